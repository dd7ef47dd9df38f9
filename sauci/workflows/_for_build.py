"""The pipeline of a build a server runs: ``.sauci.yml``, else the project's workflow file.

Given to the server's Runner as its ``pipeline_loader`` by sauci.app. The
server's policy (``max_timeout``, allowed sandboxes, sandbox capabilities,
``network``) applies to every kind of file: the native parser checks it,
and a workflow's steps never name a sandbox, a limit or the network, so
they run under the server's defaults and cannot ask for more; an image or
services (GitLab's ``image``, GitHub's ``container``) are refused again by
the executor on a sandbox that cannot run them.
Which actions map to which command is the operator's ``[sauci.actions]``
table, never the repository's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sauci.core.models import Build, Pipeline
from sauci.exceptions import ConfigError

__all__ = [
    "PLAY",
    "action_commands",
    "load_for_build",
    "missing_python",
    "workflow_schedules",
    "workflow_vars",
]

PLAY = "SAUCI_PLAY"  # the build parameter naming a GitLab manual job to run
_PEOPLE = ("manual", "rerun")  # builds a person started (a rerun keeps the parameters)

_EVENTS = {
    "push": "push",
    "webhook": "push",
    "manual": "workflow_dispatch",
    "cron": "schedule",
    "pull_request": "pull_request",
}


def load_for_build(workspace: Path, build: Build, **policy: Any) -> Pipeline:
    """The pipeline the build runs, checked against the server's ``policy``."""
    from sauci.core.pull_requests import user_params
    from sauci.workflows._lookup import Options, find_workflow, load_workflow
    from sauci.workflows.pull_context import merge_base, pull_github

    found = find_workflow(workspace)
    if found is None or found[0] == "native":
        from sauci.core.pipeline import load_pipeline

        return load_pipeline(workspace, **policy)
    kind, path = found
    # GitLab's "play": a person's build (`sauci trigger --param SAUCI_PLAY=deploy`,
    # the page's Trigger form) runs that manual job and the jobs it needs.
    play = build.params.get(PLAY) if kind == "gitlab" and build.event in _PEOPLE else None
    ref = build.ref if build.ref.startswith("refs/") else f"refs/heads/{build.branch or 'main'}"
    options = Options(
        github={
            "event_name": _EVENTS.get(build.event, build.event),
            "ref": ref,
            "sha": build.sha,
            "repository": Path(build.repo).name,
            "run_id": str(build.id),
            "actor": build.pusher or build.author,
            "before": build.old_sha,  # the push's old sha: the changed files (paths filters)
            "message": build.message,
            "inputs": user_params(build.params),  # workflow_dispatch: `sauci trigger --param`
            # A pull request: its branches and number; its changed files are those
            # since the merge base with its base branch.
            **pull_github(build),
            **({"before": base} if (base := merge_base(workspace, build)) else {}),
        },
        actions=action_commands(),
        job=play or None,
        max_timeout=policy.get("max_timeout"),
        capabilities=policy.get("capabilities"),
        workspace=workspace,
        shown_as=os.path.relpath(path, workspace),
    )
    return load_workflow(kind, path, options).pipeline


def action_commands(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, str]:
    """The operator's ``[sauci.actions]`` table: ``"owner/repo" = "command"``.

    Read from the same ``sauci.toml`` as the settings ($SAUCI_CONFIG, else
    the current directory's).
    """
    table = _operator_table("actions", environ, cwd)
    return {k.lower(): v for k, v in table.items()}


def workflow_vars(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, str]:
    """The operator's ``[sauci.vars]`` table: GitHub's ``vars`` context (configuration
    variables, which GitHub keeps in a repository's settings, never in its files)."""
    return _operator_table("vars", environ, cwd)


def missing_python(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """``[sauci.setup-python] missing``: "skip" (default) a matrix entry whose Python
    the machine lacks, with the reason, or "fail" it (the operator's choice)."""
    value = _operator_table("setup-python", environ, cwd).get("missing", "skip")
    if value not in ("skip", "fail"):
        raise ConfigError(f'[sauci.setup-python] missing is "skip" or "fail", not {value!r}')
    return value


def _operator_table(
    name: str, environ: Mapping[str, str] | None, cwd: Path | None
) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    candidates = [Path(environ["SAUCI_CONFIG"])] if environ.get("SAUCI_CONFIG") else []
    candidates.append((cwd or Path.cwd()) / "sauci.toml")
    for path in candidates:
        if not path.is_file():
            continue
        import tomllib  # only when there is a file to read, as the settings do

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
        table = data.get("sauci", data).get(name, {})
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            what = '"owner/repo" to a command string' if name == "actions" else "names to strings"
            raise ConfigError(f"{path}: [sauci.{name}] maps {what}")
        return {str(k): v for k, v in table.items()}
    return {}


def workflow_schedules(read: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """(cron, branch) of ``on.schedule`` in the workflow a repository runs, read through
    ``read(path)`` (a file at the head commit; a directory gives git's listing).

    For the server's cron trigger when a repository has no ``.sauci.yml``;
    a workflow with problems gives none (its builds will say why).
    """
    from sauci.exceptions import SauCIError
    from sauci.workflows._lookup import pick_github_workflow

    found = pick_github_workflow(read)
    if found is None:
        return []
    # The front end (and the YAML parser) only for a repository that has a workflow.
    from sauci.workflows.github import Settings, plan_github

    path, text = found
    try:
        plan = plan_github(text, Settings(file=path))
    except SauCIError:
        return []
    return [(s.cron, s.branch) for s in plan.pipeline.schedules]
