"""A workflow's ``on:`` as SauCI's step filters and cron schedules.

``push`` builds pushes, filtered by ``branches``/``tags`` (and their
``-ignore`` forms, see _refs) and ``paths`` (see _paths); ``pull_request``
builds pull requests (event ``pull_request``), filtered by ``branches`` on
the base branch and ``paths`` on the files the request changes;
``workflow_dispatch`` is SauCI's manual trigger; ``schedule`` crons become
the pipeline's schedules. ``sauci run`` (event ``cli``) and reruns always
run. ``pull_request_target`` and ``merge_group`` have no counterpart:
accepted with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sauci.core.models import Schedule, When
from sauci.core.pull_requests import PR_ACTIONS
from sauci.workflows.github._reading import Problems, where

__all__ = ["dispatch_inputs", "path_filters", "pull_types_skip", "ref_filters", "triggers"]

_ALWAYS = ("cli", "rerun")
_FILTERS = ("branches", "branches-ignore", "paths", "paths-ignore")
# The keys each event SauCI reads takes (GitHub refuses others as an invalid workflow).
_EVENT_KEYS = {
    "push": (*_FILTERS, "tags", "tags-ignore"),
    "pull_request": (*_FILTERS, "types"),
    "workflow_dispatch": ("inputs",),
}
# GitHub's pull_request activity types; without `types:` only the first three start a workflow.
_PULL_TYPES = (
    "opened", "synchronize", "reopened", "assigned", "unassigned", "labeled", "unlabeled",
    "edited", "closed", "converted_to_draft", "ready_for_review", "locked", "unlocked",
    "review_requested", "review_request_removed", "auto_merge_enabled", "auto_merge_disabled",
    "milestoned", "demilestoned", "enqueued", "dequeued",
)  # fmt: skip


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
        if isinstance(config, Mapping) and event in _EVENT_KEYS:
            for key in config:
                if key not in _EVENT_KEYS[event]:
                    problems.add(
                        where(key, at),
                        f"unknown key {key!r} in on.{event} (known: {', '.join(_EVENT_KEYS[event])})",
                    )
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
        elif event == "pull_request":
            events.append("pull_request")
            notes += _unbuilt_types(config)
        elif event in ("pull_request_target", "merge_group"):
            notes.append(
                f"on.{event}: SauCI builds pushes and pull requests (on.pull_request); "
                "this trigger has no counterpart"
            )
        else:
            notes.append(f"on.{event}: not a trigger SauCI has; ignored")
    return (
        When(events=tuple(dict.fromkeys(events))),
        tuple(schedules),
        notes,
    )


def _unbuilt_types(config: Any) -> list[str]:
    """A note naming the ``types`` no request ever starts on SauCI: its webhook
    builds a pull request only when it is opened, synchronized or reopened
    (:mod:`sauci.triggers`), since the other actions bring no new commit."""
    raw = config.get("types") if isinstance(config, Mapping) else None
    listed = [str(t) for t in (raw if isinstance(raw, list) else [raw] if raw else [])]
    unbuilt = [t for t in listed if t in _PULL_TYPES and t not in PR_ACTIONS]
    if not unbuilt:
        return []
    return [
        f"on.pull_request.types: {', '.join(unbuilt)}: never start this workflow on SauCI, "
        f"whose webhook builds a pull request only for the actions {', '.join(PR_ACTIONS)}"
    ]


def ref_filters(
    on: Any, at: tuple[int, int], problems: Problems, event: str = "push"
) -> dict[str, list[str]]:
    """``on.push``'s ``branches``, ``branches-ignore``, ``tags`` and ``tags-ignore``
    (``on.pull_request``'s ``branches`` and ``branches-ignore``: the base branch)
    as given (a key absent when not given)."""
    if not isinstance(on, Mapping) or not isinstance(on.get(event), Mapping):
        return {}
    push = on[event]
    filters: dict[str, list[str]] = {}
    keys = ("branches", "branches-ignore", "tags", "tags-ignore")
    for key in keys if event == "push" else keys[:2]:
        if key in push:
            filters[key] = [str(p) for p in _names(push, key, at, problems, event)]
    for kind in ("branches", "tags"):
        if kind in filters and f"{kind}-ignore" in filters:
            problems.add(
                push.at(kind) if hasattr(push, "at") else at,
                f"on.{event} cannot have both '{kind}' and '{kind}-ignore' (GitHub refuses it too)",
            )
    return filters


def _names(
    config: Mapping[str, Any], key: str, at: tuple[int, int], problems: Problems, event: str
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
        f"on.{event}.{key} must be a list of patterns",
    )
    return []


def _cron_ok(text: str) -> bool:
    from sauci.core.cron import CronSchedule

    try:
        CronSchedule.parse(text)
    except ValueError:
        return False
    return True


def path_filters(
    on: Any, at: tuple[int, int], problems: Problems, event: str = "push"
) -> tuple[list[str], list[str]]:
    """``on.<event>.paths`` and ``paths-ignore`` (empty when not given)."""
    if not isinstance(on, Mapping) or not isinstance(on.get(event), Mapping):
        return [], []
    push = on[event]
    paths = [str(p) for p in _names(push, "paths", at, problems, event)]
    ignore = [str(p) for p in _names(push, "paths-ignore", at, problems, event)]
    if paths and ignore:
        where = push.at("paths") if hasattr(push, "at") else at
        problems.add(
            where, f"on.{event} cannot have both 'paths' and 'paths-ignore' (GitHub refuses it too)"
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


def pull_types_skip(on: Any, action: str, problems: Problems) -> str | None:
    """Why a pull request ``action`` does not start the workflow (``on.pull_request.types``,
    GitHub's default ``opened``, ``synchronize``, ``reopened``), or None."""
    config = on.get("pull_request") if isinstance(on, Mapping) else None
    if not isinstance(config, Mapping) or "types" not in config:
        return None
    at = config.at("types") if hasattr(config, "at") else (1, 1)
    items = _names(config, "types", at, problems, "pull_request")
    for item in items:
        if str(item) not in _PULL_TYPES:
            problems.add(
                where(item, at),
                f"on.pull_request.types: {item!r} is not a pull_request activity type",
            )
    types = [str(t) for t in items]
    if action in types:
        return None
    return f"skipped: on.pull_request.types ({', '.join(types)}) does not include {action!r}"
