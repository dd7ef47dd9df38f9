"""A workflow's ``on:`` as SauCI's step filters and cron schedules.

``push`` (with ``branches``/``branches-ignore``) filters the branches a
push builds; ``workflow_dispatch`` is SauCI's manual trigger; ``schedule``
crons become the pipeline's schedules. ``sauci run`` (event ``cli``) and
reruns always run. ``pull_request`` has no counterpart (SauCI builds
pushes): accepted with a note, as are ``tags`` and ``paths`` filters
(not honoured yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sauci.core.models import Schedule, When
from sauci.workflows.github._reading import Problems

__all__ = ["triggers"]

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
    branches: list[str] = []
    schedules: list[Schedule] = []
    notes: list[str] = []
    for event, config in on.items():
        if event == "push":
            events += ["push", "webhook", "manual"]
            if isinstance(config, Mapping):
                branches += [str(b) for b in config.get("branches", []) or []]
                branches += ["!" + str(b) for b in config.get("branches-ignore", []) or []]
                for key in ("tags", "tags-ignore", "paths", "paths-ignore"):
                    if key in config:
                        notes.append(
                            f"on.push.{key}: not honoured yet (every push of a matching branch builds)"
                        )
        elif event == "workflow_dispatch":
            events.append("manual")
            if isinstance(config, Mapping) and config.get("inputs"):
                notes.append("workflow_dispatch inputs: not supported yet (inputs are empty)")
        elif event == "schedule":
            for item in config or []:
                if isinstance(item, Mapping) and "cron" in item:
                    schedules.append(Schedule(cron=str(item["cron"])))
            events.append("cron")
        elif event in ("pull_request", "pull_request_target", "merge_group"):
            notes.append(f"on.{event}: SauCI builds pushes; this trigger has no counterpart")
        else:
            notes.append(f"on.{event}: not a trigger SauCI has; ignored")
    if "push" not in on:
        # No push trigger: `sauci run` still runs it, a push to the server does not.
        pass
    return (
        When(events=tuple(dict.fromkeys(events)), branches=tuple(branches)),
        tuple(schedules),
        notes,
    )
