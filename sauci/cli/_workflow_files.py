"""Which file `sauci run` and `sauci validate` read: `.sauci.yml`, else a workflow file.

The front ends live in :mod:`sauci.workflows`; this module only turns the
command line's ``--file``/``--workflow``/``--job`` into a call to them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sauci.core.config import Settings
    from sauci.core.models import Pipeline
    from sauci.source.git import Commit

__all__ = ["add_workflow_flags", "load_for_run", "pick_file"]

NATIVE = ".sauci.yml"


def add_workflow_flags(
    parser: argparse.ArgumentParser, *, file: bool = False, path: bool = False
) -> None:
    """``--workflow FILE`` and ``--job NAME`` for `sauci run` (with ``--file``) and
    `sauci validate` (with its ``path``)."""
    if file:
        parser.add_argument("--file", default=None, help="pipeline file (default: .sauci.yml)")
        parser.add_argument(
            "--base",
            metavar="BRANCH",
            help="with --event pull_request: the branch the checkout's branch merges into",
        )
    if path:
        parser.add_argument("path", nargs="?", default=".", help="file or repository directory")
    parser.add_argument(
        "--workflow",
        metavar="FILE",
        help="a GitHub or GitLab workflow file to run instead of .sauci.yml "
        "(default: .sauci.yml, else .github/workflows/*.yml, else .gitlab-ci.yml)",
    )
    parser.add_argument(
        "--job", metavar="NAME", help="run only this workflow job (and the jobs it needs)"
    )


def pick_file(root: Path, args: argparse.Namespace) -> str:
    """The pipeline file to read, relative to ``root`` (the repository)."""
    if getattr(args, "file", None):
        return str(args.file)
    workflow = getattr(args, "workflow", None)
    if workflow:
        path = Path(workflow)
        if path.is_absolute():
            return os.path.relpath(path, root)
        return workflow
    if (root / NATIVE).is_file():  # what find_workflow picks first, without its package
        return NATIVE
    from sauci.workflows import find_workflow

    found = find_workflow(root)
    if found is None:
        return NATIVE
    return os.path.relpath(found[1], root)


def pull_request_params(args: argparse.Namespace, commit: Commit) -> dict[str, str]:
    """`sauci run --event pull_request --base BRANCH`: the build parameters that record
    the checkout's branch as a pull request into BRANCH ({} for any other event)."""
    if getattr(args, "event", "cli") != "pull_request":
        return {}
    from sauci.core.pull_requests import PullRequest, bad_branch_name
    from sauci.exceptions import ConfigError

    base = getattr(args, "base", None) or ""
    if why := bad_branch_name(base):
        raise ConfigError(f"--event pull_request needs --base BRANCH: {why}")
    head = commit.ref.removeprefix("refs/heads/") if commit.ref else "HEAD"
    return PullRequest(number=0, base=base, head=head).params()


def load_for_run(
    args: argparse.Namespace,
    workspace: Path,
    file: str,
    shown: str,
    settings: Settings,
    commit: Commit,
    capabilities: object,
) -> Pipeline:
    """The pipeline `sauci run` runs: the native file as before, a workflow through its front end.

    ``.sauci.yml`` is native wherever it is found, so reading it needs none of
    the workflow front ends (:mod:`sauci.workflows` is imported for the others)."""
    kind = "native"
    if file != NATIVE:
        from sauci.workflows import find_workflow

        found = find_workflow(workspace, file)
        kind = found[0] if found else "native"
    if kind == "native":
        from sauci.core.pipeline import load_pipeline
        from sauci.core.resources import build_maximum

        return load_pipeline(
            workspace / file,
            max_timeout=settings.max_timeout,
            capabilities=capabilities,  # type: ignore[arg-type]
            shown_as=shown,
            max_resources=build_maximum(
                settings.max_build_cpus, settings.max_build_memory, machine=False
            ),
        )
    import attrs

    from sauci.workflows import Options, action_commands, load_workflow

    branch = commit.ref.removeprefix("refs/heads/") if commit.ref else ""
    options = Options(
        job=getattr(args, "job", None),
        github={
            "event_name": "push",
            "ref": f"refs/heads/{branch}" if branch else "refs/heads/main",
            "sha": commit.sha,
            "repository": Path(args.path).resolve().name,
        },
        actions=action_commands(),
        max_timeout=settings.max_timeout,
        workspace=workspace,
        shown_as=shown,
        capabilities=capabilities,
    )
    if getattr(args, "event", "cli") == "pull_request":  # as a server builds a pull request
        from sauci.core.models import Build
        from sauci.workflows.pull_context import merge_base, pull_github

        build = Build(
            id=0,
            repo=str(workspace),
            ref=commit.ref,
            sha=commit.sha,
            event="pull_request",
            params=pull_request_params(args, commit),
        )
        base = merge_base(workspace, build)
        options = attrs.evolve(
            options,
            github={**options.github, **pull_github(build), **({"before": base} if base else {})},
        )
    pipeline = load_workflow(kind, workspace / file, options).pipeline
    if getattr(args, "event", "cli") == "cli":
        # `on:` says when a server builds; `sauci run` is asked to run it now.
        from sauci.core.models import When

        steps = [attrs.evolve(step, when=When()) for step in pipeline.steps]
        pipeline = attrs.evolve(pipeline, steps=steps)
    return pipeline
