"""Local composite actions (``uses: ./path``): their steps run in the job, in place of the step.

The action's ``action.yml`` (or ``action.yaml``) is read from the workspace,
never through a link out of it; its ``inputs`` (defaults, then the step's
``with:``) are the ``inputs`` context of its steps. The step's ``if:`` and
``env`` apply to each of its steps. Actions may use other local actions, to
a depth of five, 200 uses (and 8 MiB of action files read) in all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sauci.workflows.github._reading import LList, LMap, Problems, parse_yaml

__all__ = ["MAX_BYTES_READ", "MAX_DEPTH", "MAX_USES", "composite_steps"]

MAX_DEPTH = 5
MAX_USES = 200  # uses of local actions in one job entry, nested ones included
MAX_BYTES_READ = 8 * 1024 * 1024  # of their action files, all reads together


def composite_steps(
    uses: str,
    step: LMap,
    contexts: Mapping[str, Any],
    inputs: Mapping[str, Any],
    problems: Problems,
    *,
    workspace: Path | None,
    expand: Callable[[Any, Mapping[str, Any], Problems, int], list[dict[str, Any]]],
    depth: int,
) -> list[dict[str, Any]]:
    """The driver steps of the local action ``uses``; [] with problems added when it cannot be read."""
    at = step.at("uses")
    if depth >= MAX_DEPTH:
        problems.add(at, f"'uses: {uses}': local actions nest more than {MAX_DEPTH} deep")
        return []
    if workspace is None:
        problems.add(at, f"'uses: {uses}': a local action needs the workspace to read")
        return []
    # Every use in a job entry counts: an action that uses the next 30 times,
    # five deep, was 24 million expansions for one workflow (the reader never
    # ended). Counted per entry, so a wide matrix using one action is planned.
    state = problems.local_actions
    state.uses += 1
    if state.uses > MAX_USES:
        if not state.over:
            state.over = True
            problems.add(at, f"'uses: {uses}': more than {MAX_USES} uses of local actions")
        return []
    read = _read_once(uses, at, problems, workspace)
    if read is None:
        return []
    filename, doc = read
    inner = Problems(filename)
    inner.local_actions = state
    runs: LMap = doc["runs"]  # a mapping: _read_once checked it
    values: dict[str, Any] = {}
    declared = doc.get("inputs")
    if isinstance(declared, Mapping):
        for name, spec in declared.items():
            if isinstance(spec, Mapping) and "default" in spec:
                values[name] = "" if spec["default"] is None else str(spec["default"])
    values.update({k: str(v) for k, v in inputs.items()})
    ctx = {**contexts, "inputs": values}
    steps = runs.get("steps")
    out: list[dict[str, Any]] = []
    if isinstance(steps, LList):
        for raw in steps:
            for made in expand(raw, ctx, inner, depth + 1):
                out.append(_within(made, step))
    problems.items += inner.items
    return out


def _read_once(
    uses: str, at: tuple[int, int], problems: Problems, workspace: Path
) -> tuple[str, LMap] | None:
    """The file name and document of the composite action ``uses``, each file
    read and parsed once per workflow; None (its problems said once) if refused."""
    state = problems.local_actions
    key = os.path.normpath(uses)
    if key in state.files:
        return state.files[key]
    state.files[key] = None
    if state.bytes_read > MAX_BYTES_READ:
        return None  # said when it went past
    found = _action_file(workspace, uses)
    if isinstance(found, str):
        problems.add(at, f"'uses: {uses}': {found}")
        return None
    path, text = found
    state.bytes_read += len(text)
    if state.bytes_read > MAX_BYTES_READ:
        problems.add(at, f"'uses: {uses}': local actions read past {MAX_BYTES_READ >> 20} MiB")
        return None
    inner = Problems(os.path.relpath(path, workspace))
    doc = parse_yaml(text, inner)
    runs = doc.get("runs") if isinstance(doc, LMap) else None
    if not isinstance(runs, LMap) or runs.get("using") != "composite":
        if not inner:
            using = runs.get("using") if isinstance(runs, LMap) else None
            inner.add((1, 1), f"only composite actions run here ('runs.using: {using}')")
        problems.items += inner.items
        return None
    problems.items += inner.items
    state.files[key] = (inner.filename, doc)
    return inner.filename, doc


def _within(made: dict[str, Any], step: LMap) -> dict[str, Any]:
    """A step of the action, under the calling step's ``if:`` and ``env``."""
    outer_if = step.get("if")
    if outer_if is not None:
        from sauci.workflows.github._context import condition_source

        source = condition_source(outer_if)
        made["if"] = f"({source}) && ({made['if']})" if made.get("if") else source
        made.setdefault("if_at", list(step.at("if")))
    return made


def _action_file(workspace: Path, uses: str) -> tuple[Path, str] | str:
    """The action file of ``./dir`` and its text, or why it cannot be read."""
    base = os.path.realpath(workspace)
    folder = os.path.realpath(workspace / uses)
    if os.path.commonpath([base, folder]) != base:
        return "the action is outside the repository"
    for name in ("action.yml", "action.yaml"):
        path = Path(folder) / name
        if os.path.islink(path):
            return f"{name} is a symbolic link"
        if path.is_file():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fh:
                    return path, fh.read(1024 * 1024).decode("utf-8", "replace")
            except OSError as exc:
                return f"cannot read {name}: {exc.strerror}"
    return "no action.yml in it"
