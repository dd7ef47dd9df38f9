"""Job-level concurrency groups (sauci.core.job_groups): one running and one
waiting step per group and repository, a newer waiting step replacing the
older one, cancel-in-progress cancelling the running one; group names are
case-insensitive, as on GitHub."""

from __future__ import annotations

import threading

from sauci.core.job_groups import JobGroups


def claim(groups, owner, group="deploy", *, cancel=False, repo="r", token=None):
    return groups.claim(
        repo, group, owner, cancel_in_progress=cancel, cancel=token or threading.Event()
    )


def test_a_step_waits_while_another_build_holds_the_group_and_starts_after():
    groups = JobGroups()
    assert claim(groups, (1, "deploy")).granted
    waiting = claim(groups, (2, "deploy"), group="DEPLOY")
    assert not waiting.granted
    assert waiting.waiting == "waiting for build #1's job 'deploy' (concurrency group 'DEPLOY')"
    assert claim(groups, (2, "deploy")).waiting  # asked again: still waiting, not replaced
    assert groups.leave("r", "deploy", (1, "deploy")) is None
    assert claim(groups, (2, "deploy")).granted


def test_a_newer_waiting_step_replaces_the_older_one():
    groups = JobGroups()
    claim(groups, (1, "deploy"))
    claim(groups, (2, "deploy"))
    assert claim(groups, (3, "deploy")).waiting
    replaced = claim(groups, (2, "deploy"))
    assert replaced.replaced == (
        "cancelled: build #3's job 'deploy' replaces it in concurrency group 'deploy'"
    )
    groups.leave("r", "deploy", (1, "deploy"))
    assert claim(groups, (3, "deploy")).granted


def test_cancel_in_progress_cancels_the_running_step_and_says_why():
    groups = JobGroups()
    token = threading.Event()
    assert claim(groups, (1, "deploy"), token=token).granted
    assert claim(groups, (2, "deploy"), cancel=True).waiting
    assert token.is_set()
    why = groups.leave("r", "deploy", (1, "deploy"))
    assert why == "cancelled: build #2's job 'deploy' in concurrency group 'deploy' cancels it"
    assert claim(groups, (2, "deploy"), cancel=True).granted


def test_groups_are_per_repository_and_per_name():
    groups = JobGroups()
    assert claim(groups, (1, "a")).granted
    assert claim(groups, (2, "a"), repo="other").granted
    assert claim(groups, (3, "a"), group="release").granted


def test_a_waiting_step_that_leaves_frees_its_place():
    groups = JobGroups()
    claim(groups, (1, "deploy"))
    claim(groups, (2, "deploy"))
    groups.leave("r", "deploy", (2, "deploy"))  # its build was cancelled
    groups.leave("r", "deploy", (1, "deploy"))
    assert claim(groups, (3, "deploy")).granted
