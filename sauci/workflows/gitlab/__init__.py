"""GitLab CI files (``.gitlab-ci.yml``) read as SauCI pipelines.

:func:`load_gitlab` plans the file for one build (a :class:`GitLabContext`:
branch or tag, commit, pipeline source, changed files) the way GitLab plans a
pipeline when it is created: ``include: local`` files merged, ``!reference``
tags and ``extends`` resolved, ``rules``/``only``/``except`` decided, jobs
expanded by ``parallel``, ordered by ``stages`` or ``needs``. The result is
an ordinary :class:`~sauci.core.models.Pipeline`, so the DAG, sandboxes,
caches, JUnit reports and artifacts work as for ``.sauci.yml``. Every
problem, and every feature SauCI does not support, is a
:class:`~sauci.exceptions.PipelineError` located at file:line:col; the
server's policy (timeout cap, what its sandboxes may do) applies as for a
native file. docs/workflows.md ("GitLab CI") has the support table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.demands import SandboxCapabilities
from sauci.core.models import Pipeline
from sauci.exceptions import ConfigError, PipelineError, Problem
from sauci.workflows.gitlab._assemble import GitLabPlan, assemble
from sauci.workflows.gitlab._variables import GitLabContext
from sauci.workflows.gitlab._yaml import Map, Pos

__all__ = [
    "FILENAME", "GitLabContext", "GitLabPlan", "context_for_build", "load_gitlab", "plan_gitlab",
]  # fmt: skip

FILENAME = ".gitlab-ci.yml"
log = get_logger(__name__)


def load_gitlab(
    path: str | os.PathLike[str],
    text: str | bytes | None = None,
    *,
    context: GitLabContext | None = None,
    max_timeout: float | None = None,
    sandboxes: object = None,
    capabilities: SandboxCapabilities | None = None,
    network: bool = True,
    shown_as: str | None = None,
) -> Pipeline:
    """The pipeline of the ``.gitlab-ci.yml`` at ``path`` (its text, when
    already read, as ``text``) for the build ``context`` describes.

    ``max_timeout``, ``capabilities``, ``network`` and ``sandboxes`` are the
    server's policy, as for :func:`sauci.core.pipeline.load_pipeline`; a
    GitLab file cannot name a sandbox, the network or limits, so it cannot
    ask for more than the policy gives. Raises PipelineError listing every
    problem, ConfigError when the file cannot be read.
    """
    return plan_gitlab(
        path, text, context=context, max_timeout=max_timeout, capabilities=capabilities,
        shown_as=shown_as,
    ).pipeline  # fmt: skip


def context_for_build(
    workspace: str | os.PathLike[str],
    *,
    ref: str,
    sha: str = "",
    event: str = "push",
    project: str = "project",
    before: str = "",
    message: str = "",
    merge_request: Mapping[str, str] | None = None,
) -> GitLabContext:
    """The context of a build whose commit is checked out in ``workspace``:
    the commit's message (when not given), the default branch and, given
    ``before`` (the push's old sha), the changed files are read with git."""
    from sauci.workflows._gitfacts import commit_facts, default_branch

    found, changed = commit_facts(Path(workspace), sha, before)
    return GitLabContext.for_build(
        ref=ref, sha=sha, event=event, project=project, changed=changed,
        message=message or found or "", default_branch=default_branch(Path(workspace)) or "main",
        merge_request=merge_request,
    )  # fmt: skip


def plan_gitlab(
    path: str | os.PathLike[str],
    text: str | bytes | None = None,
    *,
    context: GitLabContext | None = None,
    max_timeout: float | None = None,
    capabilities: SandboxCapabilities | None = None,
    shown_as: str | None = None,
) -> GitLabPlan:
    """Like :func:`load_gitlab`, with the jobs left out of this build and why."""
    file = Path(path)
    if file.is_dir():
        file = file / FILENAME
    shown = shown_as or FILENAME
    if text is None:
        text = _read(file, shown)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = Problem(file=shown, line=1, column=1, message="the file is not UTF-8 text")
            raise PipelineError([problem]) from None
    problems: list[Problem] = []

    def report(pos: Pos | None, message: str) -> None:
        pos = pos or Pos(shown, 1, 1)
        problem = Problem(file=pos.file, line=pos.line, column=pos.column, message=message)
        if problem not in problems:
            problems.append(problem)

    try:
        plan = _plan(file.parent, text, shown, context or GitLabContext(), report,
                     max_timeout=max_timeout, capabilities=capabilities)  # fmt: skip
    except ConfigError as exc:  # a limit (a variable's expansion): the file's problem
        report(None, str(exc))
        plan = None
    except Exception as exc:  # a bug here must not become a crash of the server
        log.exception("gitlab_parser_failed", file=shown)
        report(None, f"internal error while reading the file ({exc!r}); please report it")
        plan = None
    if problems or plan is None:
        raise PipelineError(
            sorted(problems, key=lambda p: (p.file != shown, p.file, p.line, p.column))
        )
    return plan


def _plan(
    root: Path,
    text: str,
    shown: str,
    context: GitLabContext,
    report: Any,
    *,
    max_timeout: float | None,
    capabilities: SandboxCapabilities | None,
) -> GitLabPlan | None:
    from sauci.workflows.gitlab._include import expand_includes
    from sauci.workflows.gitlab._jobs import split
    from sauci.workflows.gitlab._merge import resolve_extends, resolve_references
    from sauci.workflows.gitlab._plan import plan_jobs
    from sauci.workflows.gitlab._workflow import workflow_left_out
    from sauci.workflows.gitlab._yaml import YamlProblem, load_text

    try:
        config = load_text(text, shown)
    except YamlProblem as problem:
        report(problem.pos, problem.message)
        return None
    if not isinstance(config, Map):
        report(None, "a .gitlab-ci.yml is a mapping of jobs and settings")
        return None
    config = resolve_references(expand_includes(root, config, report), report)
    jobs = resolve_extends(split(config, report), report)
    reason = workflow_left_out(config, context, root, report)
    planned, left_out = plan_jobs(jobs, config, context, root, report)
    if reason is not None:
        planned, left_out = [], [(name, reason) for name in jobs if not name.startswith(".")]
    pipeline = assemble(
        planned, jobs, left_out, shown, report, max_timeout=max_timeout, capabilities=capabilities
    )
    if pipeline is None:
        return None
    return GitLabPlan(pipeline=pipeline, left_out=tuple(left_out))


def _read(file: Path, shown: str) -> str:
    from sauci.workflows.gitlab._include import read_regular

    try:
        data = read_regular(file.parent, file)
    except Exception as exc:
        raise ConfigError(f"cannot read {shown}: it {exc}") from None
    if data is None:
        raise ConfigError(f"no pipeline file at {shown}")
    return data
