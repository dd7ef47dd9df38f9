"""A workflow's ``on:`` as SauCI's step filters and cron schedules.

``push`` builds pushes, filtered by ``branches``/``tags`` (and their
``-ignore`` forms, see _refs) and ``paths`` (see _paths);
``workflow_dispatch`` is SauCI's manual trigger; ``schedule`` crons become
the pipeline's schedules. ``sauci run`` (event ``cli``) and reruns always
run. ``pull_request`` has no counterpart (SauCI builds pushes): accepted
with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sauci.core.models import Schedule, When
from sauci.workflows.github._reading import Problems

__all__ = ["dispatch_inputs", "path_filters", "ref_filters", "triggers"]

_ALWAYS = ("cli", "rerun")


def triggers(
    on: Any, at: tuple[int, int], problems: Problems
) -> tuple[When, tuple[Schedule, ...], list[str]]:
    """The step filter, schedules and notes for the workflow's ``on:``."""
    if on is None:
        return When(), (), []
    if isinstance(on, str):
        on = {on: None}
    elif isinstance(on, list):
        on = {str(e): None for e in on}
    if not isinstance(on, Mapping):
        problems.add(at, "'on' must be an event name, a list of them or a mapping")
        return When(), (), []
    events: list[str] = list(_ALWAYS)
    schedules: list[Schedule] = []
    notes: list[str] = []
    for event, config in on.items():
        if event == "push":
            events += ["push", "webhook", "manual"]
        elif event == "workflow_dispatch":
            events.append("manual")
        elif event == "schedule":
            for item in config if isinstance(config, list) else [config]:
                cron = item.get("cron") if isinstance(item, Mapping) else None
                if cron is None or not _cron_ok(str(cron)):
                    problems.add(
                        on.at("schedule") if hasattr(on, "at") else at,
                        f"on.schedule needs entries of the form '- cron: \"0 6 * * 1\"' (got {cron if cron is not None else item!r})",
                    )
                    continue
                schedules.append(Schedule(cron=str(cron)))
            events.append("cron")
        elif event in ("pull_request", "pull_request_target", "merge_group"):
            notes.append(f"on.{event}: SauCI builds pushes; this trigger has no counterpart")
        else:
            notes.append(f"on.{event}: not a trigger SauCI has; ignored")
    return (
        When(events=tuple(dict.fromkeys(events))),
        tuple(schedules),
        notes,
    )


def ref_filters(on: Any, at: tuple[int, int], problems: Problems) -> dict[str, list[str]]:
    """``on.push``'s ``branches``, ``branches-ignore``, ``tags`` and ``tags-ignore``
    as given (a key absent when not given)."""
    if not isinstance(on, Mapping) or not isinstance(on.get("push"), Mapping):
        return {}
    push = on["push"]
    filters: dict[str, list[str]] = {}
    for key in ("branches", "branches-ignore", "tags", "tags-ignore"):
        if key in push:
            filters[key] = [str(p) for p in _names(push, key, at, problems)]
    for kind in ("branches", "tags"):
        if kind in filters and f"{kind}-ignore" in filters:
            problems.add(
                push.at(kind) if hasattr(push, "at") else at,
                f"on.push cannot have both '{kind}' and '{kind}-ignore' (GitHub refuses it too)",
            )
    return filters


def _names(
    config: Mapping[str, Any], key: str, at: tuple[int, int], problems: Problems
) -> list[Any]:
    """A filter's list of patterns (a single string is one pattern)."""
    value = config.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return value
    problems.add(
        config.at(key) if hasattr(config, "at") else at,
        f"on.push.{key} must be a list of patterns",
    )
    return []


def _cron_ok(text: str) -> bool:
    from sauci.core.cron import CronSchedule

    try:
        CronSchedule.parse(text)
    except ValueError:
        return False
    return True


def path_filters(on: Any, at: tuple[int, int], problems: Problems) -> tuple[list[str], list[str]]:
    """``on.push.paths`` and ``on.push.paths-ignore`` (empty when not given)."""
    if not isinstance(on, Mapping) or not isinstance(on.get("push"), Mapping):
        return [], []
    push = on["push"]
    paths = [str(p) for p in _names(push, "paths", at, problems)]
    ignore = [str(p) for p in _names(push, "paths-ignore", at, problems)]
    if paths and ignore:
        where = push.at("paths") if hasattr(push, "at") else at
        problems.add(
            where, "on.push cannot have both 'paths' and 'paths-ignore' (GitHub refuses it too)"
        )
    return paths, ignore


def dispatch_inputs(on: Any, given: Mapping[str, str]) -> dict[str, Any]:
    """The ``inputs`` context: workflow_dispatch's declared defaults, then the build's
    parameters (``sauci trigger --param name=value``); a boolean input is a boolean."""
    declared = on.get("workflow_dispatch") if isinstance(on, Mapping) else None
    specs = declared.get("inputs") if isinstance(declared, Mapping) else None
    values: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    if isinstance(specs, Mapping):
        for name, spec in specs.items():
            if isinstance(spec, Mapping):
                kinds[str(name)] = str(spec.get("type", "string"))
                if "default" in spec:
                    values[str(name)] = spec["default"]
    values.update(given)
    for name, kind in kinds.items():
        if kind == "boolean" and isinstance(values.get(name), str):
            values[name] = values[name].strip().lower() == "true"
    return values
