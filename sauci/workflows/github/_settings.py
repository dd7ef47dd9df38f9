"""What the machine decides about a workflow run, and the plan's entries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Entry", "Settings"]


@attrs.frozen(kw_only=True)
class Settings:
    """What the machine running the plan decides, never the workflow file."""

    workspace: Path | None = None
    job: str | None = None  # --job: this job and those it needs
    github: Mapping[str, Any] = attrs.field(factory=dict)  # event_name, ref, sha, repository
    actions: Mapping[str, str] = attrs.field(factory=dict)  # owner/repo -> command (operator's)
    max_timeout: float | None = None
    path: str | None = None  # PATH to find interpreters on (default: this process's)
    file: str = ""  # the workflow file as shown in messages
    # The files the push changed (on.push.paths filters); None: not known, run.
    changed_files: tuple[str, ...] | None = None
    # workflow_dispatch inputs given to the build (its parameters)
    inputs: Mapping[str, str] = attrs.field(factory=dict)
    # pytest's JUnit report through PYTEST_ADDOPTS, so the tests show in the page
    pytest_junit: bool = True
    # What the sandbox that will run the jobs can do (sauci.core.demands); a
    # container or services it cannot run is a problem at the key. None: unchecked.
    capabilities: Any = None
    vars: Mapping[str, str] = attrs.field(factory=dict)  # the `vars` context (operator's)
    # A Python setup-python asks for and the machine lacks: "skip" the entry, or "fail" it.
    missing_python: str = attrs.field(
        default="skip", validator=attrs.validators.in_(("skip", "fail"))
    )


@attrs.frozen(kw_only=True)
class Entry:
    """One matrix entry of a job as planned: its SauCI step name, or why it is skipped."""

    job: str
    name: str
    matrix: Mapping[str, str]
    steps: tuple[str, ...]
    skip: str | None = None
    condition: str | None = None  # an if: decided when the jobs it needs have ended
    notes: tuple[str, ...] = ()
    dynamic: str | None = None  # "entries from needs.X.outputs.Y at run time"
    labels: tuple[str, ...] = ()  # worker labels its runs-on asks for (sauci serve's workers)
