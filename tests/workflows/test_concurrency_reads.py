"""What the concurrency gate reads from git in the server's rounds, which run
before every claim: a queue of builds of one branch or commit costs one read
of its files, not one per build, and a branch that moves between rounds is
read again."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.source.git import read_file
from sauci.storage.memory import MemoryStore
from sauci.workflows import ConcurrencyGate

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

WORKFLOW = """\
name: CI
on: push
concurrency:
  group: ci-${{ github.ref }}
  cancel-in-progress: true
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path) -> str:
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "ci")
    return str(path)


def counting_gate(store: MemoryStore) -> tuple[ConcurrencyGate, Counter[tuple[str, str]]]:
    reads: Counter[tuple[str, str]] = Counter()

    def read(repo: str, rev: str, path: str) -> str | None:
        reads[(rev, path)] += 1
        return read_file(repo, rev, path)

    return ConcurrencyGate(store, read), reads


def queue(store: MemoryStore, repo: str, *, ref: str = "refs/heads/main", sha: str | None = None):
    request = BuildRequest(repo=repo, ref=ref, sha=sha, event="push")
    return Scheduler(store).enqueue(request).id


def test_a_queue_of_one_branch_reads_its_files_once_per_round(tmp_path):
    store = MemoryStore()
    repo = make_repo(tmp_path / "repo")
    gate, reads = counting_gate(store)
    ids = [queue(store, repo) for _ in range(10)]
    gate.refresh()
    assert reads[("refs/heads/main", ".sauci.yml")] == 1
    assert reads[("refs/heads/main", ".github/workflows/ci.yml")] == 1
    # Each build still has its own group and the newest replaces the others.
    assert all(store.get_build(i).status is Status.CANCELLED for i in ids[:9])
    assert store.get_build(ids[-1]).status is Status.QUEUED and gate.may_claim(ids[-1])


def test_builds_of_one_commit_are_read_once_across_rounds(tmp_path):
    store = MemoryStore()
    repo = make_repo(tmp_path / "repo")
    sha = git(Path(repo), "rev-parse", "HEAD")
    gate, reads = counting_gate(store)
    first = queue(store, repo, sha=sha)
    gate.refresh()
    store.claim_build("w", build_id=first)
    store.finish_build(first, "w", status=Status.PASSED, reason=None, finished_at=1.0)
    second = queue(store, repo, sha=sha)
    assert second != first
    gate.refresh()
    assert reads[(sha, ".sauci.yml")] == 1


def test_a_branch_that_moved_between_rounds_is_read_again(tmp_path):
    store = MemoryStore()
    repo = make_repo(tmp_path / "repo")
    gate, _ = counting_gate(store)
    first = queue(store, repo)
    gate.refresh()
    assert store.claim_build("w", build_id=first) is not None
    # The branch now runs a native pipeline: never held, never cancelling.
    (Path(repo) / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n")
    git(Path(repo), "add", ".")
    git(Path(repo), "commit", "-q", "-m", "native")
    second = queue(store, repo)
    gate.refresh()
    assert gate.may_claim(second)
    assert store.get_build(first).cancel_requested is None


def test_a_pushed_workflow_the_reader_fails_on_stops_no_round(tmp_path, monkeypatch):
    """The gate reads every queued build's workflow before each claim: a
    pushed `timeout-minutes:` of 5,000 digits (int() refuses more than 4,300)
    raised out of refresh(), so the server claimed nothing, round after round,
    for as long as that build was queued. Such a build is held by nothing,
    and so is one whose file the reader fails on for any other reason."""
    store = MemoryStore()
    repo = make_repo(tmp_path / "repo")
    workflow = Path(repo) / ".github" / "workflows" / "ci.yml"
    workflow.write_text(
        WORKFLOW.replace("runs-on:", f"timeout-minutes: {'9' * 5000}\n    runs-on:")
    )
    git(Path(repo), "commit", "-qam", "huge")
    gate, _ = counting_gate(store)
    build = queue(store, repo)
    gate.refresh()
    assert gate.may_claim(build)

    import sauci.workflows.github

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of the reader")

    monkeypatch.setattr(sauci.workflows.github, "plan_github", broken)
    other = queue(store, repo, sha=git(Path(repo), "rev-parse", "HEAD~1"))
    gate.refresh()
    assert gate.may_claim(other)
