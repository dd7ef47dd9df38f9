"""`sauci validate` of a GitHub or GitLab workflow file: its plan, or every problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sauci.core.config import Settings

__all__ = ["validate_workflow"]


def validate_workflow(
    args: argparse.Namespace, path: Path, settings: Settings, style: Any
) -> int | None:
    """The exit code after printing the plan or the problems; None for a native file."""
    from sauci.cli import EXIT_OK, EXIT_USAGE
    from sauci.exceptions import ConfigError, PipelineError
    from sauci.workflows import Options, action_commands, find_workflow, load_workflow

    root = _repository(path)
    found = find_workflow(root, str(path.resolve().relative_to(root)))
    if found is None or found[0] == "native":
        return None
    from sauci.cli._sandbox_check import pipeline_capabilities

    options = Options(
        job=getattr(args, "job", None),
        actions=action_commands(),
        max_timeout=settings.max_timeout,
        workspace=root,
        shown_as=str(path),
        capabilities=pipeline_capabilities(args, settings),  # what `sauci run` checks too
    )
    try:
        loaded = load_workflow(found[0], path, options)
    except PipelineError as exc:
        for problem in exc.problems:
            print(style.paint(str(problem), "31"))
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {path}")
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"sauci: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(loaded.plan, end="")
    return EXIT_OK


def _repository(path: Path) -> Path:
    """The directory holding ``.github`` (or the file's own directory)."""
    resolved = path.resolve()
    for parent in resolved.parents:
        if (parent / ".github").is_dir() and str(resolved).startswith(str(parent / ".github")):
            return parent
    return resolved.parent
