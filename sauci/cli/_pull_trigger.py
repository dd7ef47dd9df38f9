"""``sauci trigger --event pull_request``: a build of a branch as a pull request into another."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from sauci.core.models import Build, BuildRequest
from sauci.core.pull_requests import PR_EVENT, PullRequest, bad_branch_name
from sauci.core.scheduler import PRIORITY, Scheduler
from sauci.exceptions import ConfigError
from sauci.typing import Store

__all__ = ["pull_request_build"]


def pull_request_build(
    store: Store,
    location: str,
    args: argparse.Namespace,
    params: Mapping[str, str],
    *,
    actor: str,
) -> Build:
    """Queue ``--ref`` (a branch, or a forge's ``refs/pull/N/head``) as a pull request
    into ``--base``; its number is ``--number`` (0: a local one)."""
    if not args.base:
        raise ConfigError("--event pull_request needs --base BRANCH (the branch it merges into)")
    ref = args.ref or ""
    if not ref:
        raise ConfigError("--event pull_request needs --ref (the pull request's head branch)")
    for name, value in (("--base", args.base), ("--ref", ref.removeprefix("refs/heads/"))):
        if why := bad_branch_name(value):
            raise ConfigError(f"{name}: {why}")
    if args.number < 0:
        raise ConfigError(f"--number must be 0 or more, got {args.number}")
    head = ref.removeprefix("refs/heads/")
    ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    request = PullRequest(number=args.number, base=args.base, head=head)
    return Scheduler(store).enqueue(
        BuildRequest(
            repo=location,
            ref=ref,
            event=PR_EVENT,
            priority=PRIORITY["manual"],
            params={**params, **request.params()},
            pusher=actor,
        ),
        actor=actor,
    )
