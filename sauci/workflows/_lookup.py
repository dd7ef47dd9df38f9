"""Finding a workspace's pipeline file and reading it with the front end for its kind."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci.core.models import Pipeline
from sauci.exceptions import ConfigError

__all__ = [
    "FRONT_ENDS",
    "NATIVE",
    "Loaded",
    "Options",
    "find_workflow",
    "load_workflow",
    "pick_github_workflow",
]

NATIVE = ".sauci.yml"
GITHUB_DIR = ".github/workflows"
GITLAB = ".gitlab-ci.yml"

FRONT_ENDS: dict[str, str] = {
    "github": "sauci.workflows._github_front:load_github",
    "gitlab": "sauci.workflows._gitlab_front:load_gitlab_front",
}


@attrs.frozen(kw_only=True)
class Options:
    """What the caller (the operator, the command line) decides; never the file."""

    job: str | None = None
    github: Mapping[str, Any] = attrs.field(factory=dict)  # event_name, ref, sha, repository
    actions: Mapping[str, str] = attrs.field(factory=dict)  # owner/repo -> command
    max_timeout: float | None = None
    workspace: Path | None = None
    shown_as: str | None = None  # the path shown in messages
    path: str | None = None  # PATH to look for interpreters on (default: this process's)
    # The files the build's push changed (GitHub's on.push.paths); None: not known.
    changed_files: tuple[str, ...] | None = None
    # What the sandbox that will run it can do (sauci.core.demands.SandboxCapabilities):
    # an image or services it cannot run are problems at file:line:col. None: unchecked.
    capabilities: Any = None
    # GitHub's `vars` context; None: the operator's [sauci.vars] table in sauci.toml.
    vars: Mapping[str, str] | None = None


@attrs.frozen(kw_only=True)
class Loaded:
    """A workflow file read: its Pipeline, and the plan as text (empty for native files)."""

    pipeline: Pipeline
    kind: str
    path: Path
    plan: str = ""


def find_workflow(workspace: Path, workflow: str | None = None) -> tuple[str, Path] | None:
    """(kind, file) for what ``workspace`` runs; None when it has no pipeline at all.

    ``workflow`` names a file (relative to the workspace): its kind comes from
    where it is. Several GitHub workflow files: the one whose name says test
    or CI first (``tests.yml``, ``ci.yml``), else the first in name order.
    """
    if workflow:
        path = workspace / workflow
        return _kind(path, workspace), path
    if (workspace / NATIVE).is_file():
        return "native", workspace / NATIVE
    folder = workspace / GITHUB_DIR
    if folder.is_dir():
        files = [p.name for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()]
        if files:
            return "github", folder / _first_workflow(files)
    if (workspace / GITLAB).is_file():
        return "gitlab", workspace / GITLAB
    return None


def _kind(path: Path, workspace: Path) -> str:
    rel = os.path.relpath(path, workspace).replace(os.sep, "/")
    if rel.startswith(GITHUB_DIR + "/"):
        return "github"
    if path.name in (GITLAB,) or path.name.endswith(".gitlab-ci.yml"):
        return "gitlab"
    return "native"


def load_workflow(kind: str, path: Path, options: Options) -> Loaded:
    """Read ``path`` with the front end for ``kind``; ConfigError/PipelineError when it cannot."""
    shown = options.shown_as or str(path)
    text = _read(path, shown)
    if kind == "native":
        from sauci.core.pipeline import parse_pipeline

        pipeline = parse_pipeline(text, shown, max_timeout=options.max_timeout)
        return Loaded(pipeline=pipeline, kind=kind, path=path)
    target = FRONT_ENDS.get(kind)
    if target is None:
        raise ConfigError(f"{shown}: SauCI cannot read {kind} files yet")
    module, _, function = target.partition(":")
    loaded = getattr(importlib.import_module(module), function)(path, text, options)
    if isinstance(loaded, Pipeline):
        return Loaded(pipeline=loaded, kind=kind, path=path)
    return loaded  # type: ignore[no-any-return]


def _read(path: Path, shown: str) -> str:
    """The file's text, from a regular file inside its repository (never through a link out)."""
    base = os.path.realpath(path.parent)
    real = os.path.realpath(path)
    if os.path.commonpath([base, real]) != base:
        raise ConfigError(
            f"{shown} is a symbolic link out of its repository; SauCI reads only files in it"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not os.path.isfile(real):
            raise ConfigError(f"{shown} is not a regular file")
        data = fh.read(2 * 1024 * 1024)
    return data.decode("utf-8", "replace")


def _first_workflow(names: list[str]) -> str:
    """The workflow file a repository runs, of ``names`` (file names, not
    empty): the first by name whose name says test or CI, else the first."""
    names = sorted(names)
    preferred = [n for n in names if any(w in n.rsplit(".", 1)[0].lower() for w in ("test", "ci"))]
    return (preferred or names)[0]


def pick_github_workflow(read: Callable[[str], str | None]) -> tuple[str, str] | None:
    """(path, text) of the GitHub workflow a repository runs, read through ``read(path)``
    (a file at a commit; a directory gives git's listing): as :func:`find_workflow`."""
    listing = read(f"{GITHUB_DIR}/") or ""
    names = [
        line.strip()
        for line in listing.splitlines()[1:]
        if line.strip().endswith((".yml", ".yaml")) and "/" not in line.strip()
    ]
    if not names:
        return None
    path = f"{GITHUB_DIR}/{_first_workflow(names)}"
    text = read(path)
    return None if text is None else (path, text)
