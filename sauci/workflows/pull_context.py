"""What a pull-request build adds to the ``github`` context (and GitLab's
``CI_MERGE_REQUEST_*`` variables), from the request the build records
(:mod:`sauci.core.pull_requests`); and the merge base its ``paths``
filters and ``changes:`` rules compare with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sauci.core.models import Build
from sauci.core.pull_requests import PR_EVENT, PullRequest, bad_branch_name, build_pull_request

__all__ = ["merge_base", "pull_github", "pull_request_variables"]


def pull_github(build: Build) -> dict[str, Any]:
    """``event_name``, ``base_ref``, ``head_ref`` and ``event.pull_request`` of a
    pull-request build; {} for any other build."""
    pr = build_pull_request(build)
    if pr is None:
        return {}
    return {
        "event_name": PR_EVENT,
        "base_ref": pr.base,
        "head_ref": pr.head,
        "event": {
            "action": pr.action or "synchronize",
            "number": pr.number,
            "pull_request": {
                "number": pr.number,
                "title": pr.title,
                "head": {"ref": pr.head, "sha": build.sha},
                "base": {"ref": pr.base, "sha": pr.base_sha},
            },
        },
    }


def pull_request_variables(pr: PullRequest, diff_base: str = "") -> dict[str, str]:
    """GitLab's ``CI_MERGE_REQUEST_*`` variables of a merge-request pipeline."""
    out = {
        "CI_MERGE_REQUEST_IID": str(pr.number),
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": pr.head,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": pr.base,
        "CI_MERGE_REQUEST_TITLE": pr.title,
        "CI_MERGE_REQUEST_EVENT_TYPE": "detached",  # the head commit, not a merge result
    }
    if diff_base:
        out["CI_MERGE_REQUEST_DIFF_BASE_SHA"] = diff_base
    return out


def merge_base(workspace: Path, build: Build) -> str:
    """The commit where a pull-request build's head left its base branch (the base's
    sha when the forge said it, else the base branch in the repository), "" when
    not known: the request's changed files are those since then."""
    from sauci.workflows._gitfacts import git_merge_base

    pr = build_pull_request(build)
    if pr is None:
        return ""
    bases = [pr.base_sha]
    if bad_branch_name(pr.base) is None:
        bases += [f"refs/heads/{pr.base}", f"refs/remotes/origin/{pr.base}"]
    for base in bases:
        if base and (found := git_merge_base(workspace, base, build.sha)):
            return found
    return ""
