"""While every build slot of `sauci serve` is taken, the next queued build is
checked out ahead (sauci.core.ahead): a slot that frees claims it and starts
its step without a reset of its own. Nothing of it is written before its
claim; a checkout whose build is cancelled, whose commit is gone or whose
branch moved is not used, and a server killed with one leaves a slot the
next build resets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Build, BuildRequest, Status
from sauci.core.runner import LocalRunner
from sauci.core.scheduler import Scheduler
from sauci.core.server import Server, ServerOptions
from sauci.source import workspaces
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]
SLOW = {"tick": 300.0, "idle_tick": 300.0}  # no safety round within a test


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(tmp: Path) -> Path:
    """A repository whose step waits until ``<tmp>/go-<build id>`` exists, and
    fails when the workspace holds a file ``stray``."""
    repo = tmp / "repo"
    repo.mkdir()
    pipeline = f"""\
        steps:
          wait:
            run: |
              test ! -e stray
              while [ ! -e {tmp}/go-$SAUCI_BUILD_ID ]; do sleep 0.01; done
        """
    (repo / ".sauci.yml").write_text(textwrap.dedent(pipeline))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def serve(tmp: Path) -> Server:
    settings = Settings(data_dir=tmp / "data", grace=1.0, sandbox="local")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[],
        options=ServerOptions(max_builds=1, **SLOW),
    )
    server.start()
    return server


def ahead_of(server: Server):  # the in-process runner's CheckoutsAhead
    return server.runner.wrapped.ahead  # type: ignore[attr-defined]


def queue(server: Server, repo: Path, **fields: str) -> int:
    request = BuildRequest(repo=str(repo), ref="refs/heads/main", **fields)
    return Scheduler(server.store).enqueue(request).id


def go(tmp: Path, build_id: int) -> None:
    (tmp / f"go-{build_id}").touch()


def ended(server: Server, build_id: int):
    return wait_for(
        lambda: (b := server.store.get_build(build_id)).status.done and b,
        f"build {build_id} to end",
    )


@pytest.fixture
def resets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The shas every workspace slot was reset to, in order."""
    seen: list[str] = []
    reset = workspaces.Lease.reset

    def counting(self: workspaces.Lease, sha: str) -> Path:
        seen.append(sha)
        return reset(self, sha)

    monkeypatch.setattr(workspaces.Lease, "reset", counting)
    return seen


def test_the_next_build_is_checked_out_while_the_slot_is_taken_and_runs_from_it(
    tmp_path: Path, resets: list[str]
) -> None:
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    try:
        first, second = queue(server, repo), queue(server, repo)
        wait_for(lambda: ahead_of(server).held() == [second], "the second build checked out ahead")
        assert 2 == len(resets)  # the first build's, and the second's ahead
        waiting = server.store.get_build(second)
        assert (Status.QUEUED, "", "") == (
            waiting.status,
            waiting.sha,
            waiting.author,
        )  # nothing written ahead
        go(tmp_path, first)
        go(tmp_path, second)
        assert Status.PASSED == ended(server, first).status
        done = ended(server, second)
        assert Status.PASSED == done.status
        assert done.sha == git(repo, "rev-parse", "HEAD").strip()
        assert done.author == "Tester <t@example.com>"
        assert 2 == len(resets)  # its claim reset nothing
        assert [] == ahead_of(server).held()
    finally:
        server.stop(timeout=10)


def test_a_build_cancelled_while_checked_out_ahead_hands_its_workspace_back(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    try:
        first, second = queue(server, repo), queue(server, repo)
        wait_for(lambda: ahead_of(server).held() == [second], "the second build checked out ahead")
        Scheduler(server.store).cancel(second, reason="not wanted")
        wait_for(lambda: ahead_of(server).held() == [], "its checkout to be handed back")
        workspaces.wait_for_tidying()
        third = queue(server, repo)
        wait_for(lambda: ahead_of(server).held() == [third], "the third build checked out ahead")
        go(tmp_path, first)
        go(tmp_path, third)
        assert Status.PASSED == ended(server, third).status
        cancelled = server.store.get_build(second)
        assert (Status.CANCELLED, []) == (cancelled.status, server.store.list_steps(second))
        # The handed-back slot was taken again: no slot is made for nothing.
        slots = [p for p in (tmp_path / "data" / "workspaces").iterdir() if p.is_dir()]
        assert 2 == len(slots), slots
    finally:
        server.stop(timeout=10)


def test_a_build_whose_commit_is_gone_is_not_checked_out_ahead_and_errors_at_its_claim(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    try:
        first = queue(server, repo)
        gone = queue(server, repo, sha="0123456789" * 4)
        after = queue(server, repo)
        # The next build that can be checked out is; the gone one is skipped.
        wait_for(lambda: ahead_of(server).held() == [after], "the build after it checked out ahead")
        go(tmp_path, first)
        errored = ended(server, gone)
        assert Status.ERRORED == errored.status
        assert "is not a commit" in (errored.reason or "")
        go(tmp_path, after)
        assert Status.PASSED == ended(server, after).status
    finally:
        server.stop(timeout=10)


def test_a_branch_that_moved_since_its_checkout_ahead_is_built_at_its_new_commit(
    tmp_path: Path, resets: list[str]
) -> None:
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    try:
        first, second = queue(server, repo), queue(server, repo)
        wait_for(lambda: ahead_of(server).held() == [second], "the second build checked out ahead")
        old = git(repo, "rev-parse", "HEAD").strip()
        (repo / "new").write_text("x")
        git(repo, "add", "new")
        git(repo, "commit", "-q", "-m", "second")
        new = git(repo, "rev-parse", "HEAD").strip()
        go(tmp_path, first)
        go(tmp_path, second)
        built = ended(server, second)
        assert (Status.PASSED, new) == (built.status, built.sha)
        assert [old, old, new] == resets
    finally:
        server.stop(timeout=10)


SERVE = """\
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_checkouts_ahead import ahead_of, queue, serve
tmp, repo = Path(sys.argv[1]), Path(sys.argv[2])
server = serve(tmp)
first, second = queue(server, repo), queue(server, repo)
while ahead_of(server).held() != [second]:
    time.sleep(0.01)
print(first, second, ahead_of(server)._ready[second].workspace, flush=True)
time.sleep(600)
"""


def test_a_server_killed_with_a_checkout_ahead_leaves_a_slot_the_next_build_resets(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    killed = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(tmp_path), str(repo), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert killed.stdout is not None
        first, second, workspace = killed.stdout.readline().split()
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    # What a half-made workspace may hold; the step fails if it is still there.
    (Path(workspace) / "stray").write_text("left by the killed server")
    server = serve(tmp_path)  # recovers: the first build is requeued
    try:
        # The second build runs; the next one is checked out ahead in the slot
        # the killed server held for it, which is reset first.
        wait_for(lambda: ahead_of(server).held(), "a build checked out ahead again")
        assert not (Path(workspace) / "stray").exists()
        for build_id in range(1, 5):
            go(tmp_path, build_id)

        def all_ended() -> list[Build] | None:
            found = server.store.list_builds()
            return found if all(b.status.done for b in found) else None

        builds = wait_for(all_ended, "every build to end")
        lost = server.store.get_build(int(first))
        assert Status.ERRORED == lost.status  # requeued as another build
        others = [b for b in builds if b.id != lost.id]
        assert {Status.PASSED} == {b.status for b in others}, [b.reason for b in others]
        assert int(second) in {b.id for b in others}
    finally:
        server.stop(timeout=10)


def test_a_reader_failing_otherwise_hands_back_the_slot_reserved_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader's bug (not a SauCIError or OSError) goes on to the claim, which
    records it; the workspace slot reserved for the checkout is not kept."""
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    server.stop()  # nothing claims: the queued build stays queued
    released: list[Path] = []
    release = workspaces.Lease.release

    def counting(self: workspaces.Lease, *a: object, **k: object) -> None:
        released.append(self.path)
        return release(self, *a, **k)

    def broken(self: LocalRunner, workspace: Path, build: object) -> None:
        raise RecursionError("a reader's bug")

    monkeypatch.setattr(workspaces.Lease, "release", counting)
    monkeypatch.setattr(LocalRunner, "_pipeline", broken)
    build = server.store.get_build(queue(server, repo))
    assert build.status is Status.QUEUED
    local = server.runner.wrapped.local  # type: ignore[attr-defined]
    with pytest.raises(RecursionError):
        local.check_out_ahead(build)
    assert released, "the slot reserved ahead was never released"


@pytest.mark.parametrize("told", [True, False])
def test_a_checkout_ahead_reads_the_pipeline_with_the_author_and_message_the_claim_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, told: bool
) -> None:
    """A build whose trigger named its author and message (a webhook) keeps
    them, as run_build reads it; one that did not takes the commit's."""
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    server.stop()  # nothing claims: the queued build stays queued
    read: list[Build] = []
    monkeypatch.setattr(LocalRunner, "_pipeline", lambda self, ws, build: read.append(build))
    fields = {"author": "pusher", "message": "from the webhook"} if told else {}
    build = server.store.get_build(queue(server, repo, **fields))
    ahead = server.runner.wrapped.local.check_out_ahead(build)  # type: ignore[attr-defined]
    assert ahead is not None
    ahead.release()
    expected = ("pusher", "from the webhook") if told else ("Tester <t@example.com>", "first")
    assert (read[0].author, read[0].message.strip()) == expected
