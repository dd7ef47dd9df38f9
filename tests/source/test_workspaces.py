"""Reused workspaces (GitSource.reserve/acquire): a reset slot holds exactly the
commit's tree, a crashed build's slot is repaired, two builds never share one, and
a slot tidied after its build is trusted only while nothing else touched it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sauci import BuildRequest, Status
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.source import workspaces
from sauci.source.git import GitSource
from sauci.source.workspaces import wait_for_tidying
from sauci.storage.memory import MemoryStore

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("build/\n*.pyc\n")
    (repo / "keep.txt").write_text("one\n")
    (repo / "gone.txt").write_text("only in the first commit\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def commit_second(repo: Path) -> tuple[str, str]:
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "keep.txt").write_text("two\n")
    (repo / "gone.txt").unlink()
    (repo / "new.txt").write_text("new\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    return first, git(repo, "rev-parse", "HEAD").strip()


def files(ws: Path) -> dict[str, str]:
    """Every file of a workspace but git's own pointer, with its text."""
    out = {}
    for root, _dirs, names in os.walk(ws):
        for name in names:
            path = Path(root, name)
            rel = path.relative_to(ws).as_posix()
            if rel != ".git":
                out[rel] = path.read_text(errors="replace")
    return out


def litter(ws: Path) -> None:
    """What a build leaves: changes, untracked and ignored files, a nested repository."""
    (ws / "keep.txt").write_text("changed by a step\n")
    (ws / "untracked.txt").write_text("x")
    (ws / "build").mkdir()
    (ws / "build" / "out.o").write_text("x")
    (ws / "mod.pyc").write_text("x")
    (ws / "nested").mkdir()
    git(ws / "nested", "init", "-q")


def test_a_reused_workspace_holds_exactly_the_new_commit(tmp_path, repo):
    first, second = commit_second(repo)
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(first, root) as lease:
        path = lease.path
        assert {".gitignore": "build/\n*.pyc\n", "keep.txt": "one\n"} | {
            "gone.txt": "only in the first commit\n"
        } == files(path)
        litter(path)
    with source.acquire(second, root) as lease:
        assert path == lease.path  # the same slot, reset rather than made again
        assert {".gitignore": "build/\n*.pyc\n", "keep.txt": "two\n", "new.txt": "new\n"} == (
            files(lease.path)
        )
        assert second == git(lease.path, "rev-parse", "HEAD").strip()
    listing = git(repo, "worktree", "list")
    assert 2 == len(listing.splitlines())  # the repository and the one slot


def test_a_slot_with_a_broken_worktree_is_made_again(tmp_path, repo):
    """A build that died mid-checkout: git's index lock left behind, files half written."""
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(sha, root) as lease:
        path = lease.path
    gitdir = Path((path / ".git").read_text().split(":", 1)[1].strip())
    (gitdir / "index.lock").write_text("")
    (path / "half-written").write_text("x")
    with source.acquire(sha, root) as lease:
        assert path == lease.path
        assert {".gitignore", "keep.txt", "gone.txt"} == set(files(lease.path))


def test_a_deleted_slot_is_made_again(tmp_path, repo):
    """Someone deleted the data directory: git still lists the worktree."""
    import shutil

    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(sha, root) as lease:
        path = lease.path
    shutil.rmtree(root)
    with source.acquire(sha, root) as lease:
        assert path == lease.path
        assert {".gitignore", "keep.txt", "gone.txt"} == set(files(lease.path))


def test_a_slot_held_by_a_killed_process_is_free_and_clean(tmp_path, repo):
    """The flock goes with the process: a crashed holder blocks nobody."""
    sha = git(repo, "rev-parse", "HEAD").strip()
    root = tmp_path / "workspaces"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sauci.source.git import GitSource; "
            f"lease = GitSource({str(repo)!r}).acquire({sha!r}, Path({str(root)!r})); "
            "(lease.path / 'junk').write_text('x'); print(lease.path, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        held = Path(holder.stdout.readline().strip())
        with GitSource(repo).acquire(sha, root) as lease:
            assert held != lease.path  # held: another slot
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with GitSource(repo).acquire(sha, root) as lease:
        assert held == lease.path  # free again once its holder is gone, and reset
        assert "junk" not in files(lease.path)


def test_concurrent_leases_never_share_a_workspace(tmp_path, repo):
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    held: list[Path] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            with source.acquire(sha, root) as lease:
                with lock:
                    held.append(lease.path)
                barrier.wait(timeout=30)  # all four hold theirs at once
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors
    assert 4 == len(set(held))


def test_release_without_reset_waits_for_the_clean(tmp_path, repo):
    """A build that fails before its checkout still leaves a slot git is not working on."""
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    source.acquire(sha, root).release()
    lease = source.reserve(root)
    lease.release()
    lease.release()  # twice is harmless
    with source.acquire(sha, root) as again:
        assert lease.path == again.path


def runner_for(tmp_path: Path, repo: Path) -> tuple[LocalRunner, MemoryStore, Settings]:
    """A runner whose builds' step fails if an earlier build's file is still
    in its workspace, and adds the workspace's path to ``../where``."""
    (repo / ".sauci.yml").write_text(
        "steps:\n  s:\n    run: test ! -e left-behind && touch left-behind && pwd >> ../where\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipeline")
    settings = Settings(data_dir=tmp_path / "data")
    store = MemoryStore()
    return LocalRunner(store=store, settings=settings, secrets={}), store, settings


def test_the_runner_reuses_one_workspace_and_each_build_starts_clean(tmp_path, repo):
    runner, store, settings = runner_for(tmp_path, repo)
    for _ in range(3):
        store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
        build = runner.run_next()
        assert build is not None and Status.PASSED is build.status, build
        assert build.author.startswith("T <") and build.message == "pipeline"
        assert wait_for_tidying(timeout=30)
    seen = (settings.workspaces_dir / "where").read_text().split()
    assert 3 == len(seen) and 1 == len(set(seen)), seen


def test_builds_one_after_another_keep_to_one_slot_and_start_clean(tmp_path, repo):
    """Without waiting for the tidy between builds."""
    runner, store, settings = runner_for(tmp_path, repo)
    for _ in range(6):
        store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
    while (build := runner.run_next()) is not None:
        assert Status.PASSED is build.status, build
    assert wait_for_tidying(timeout=30)
    used = (settings.workspaces_dir / "where").read_text().split()
    assert 6 == len(used) and 1 == len(set(used)), used


def note(root: Path, slot: Path) -> str:
    return (root / f".{slot.name}.lock").read_text()


def tidy(lease: workspaces.Lease) -> Path:
    """Hand ``lease`` back to be tidied, wait for the tidy; the slot's path."""
    lease.release(tidy=True)
    assert wait_for_tidying(timeout=30)
    return lease.path


def test_a_tidied_slot_is_clean_and_the_next_build_of_its_commit_runs_no_git(
    tmp_path, repo, monkeypatch
):
    first, second = commit_second(repo)
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    lease = source.acquire(first, root)
    litter(lease.path)
    path = tidy(lease)
    assert {".gitignore": "build/\n*.pyc\n", "keep.txt": "one\n"} | {
        "gone.txt": "only in the first commit\n"
    } == files(path)
    assert first == note(root, path)

    started: list[tuple[str, ...]] = []
    real = workspaces.GitCommand

    def recording(args, *a, **k):
        started.append(tuple(args))
        return real(args, *a, **k)

    monkeypatch.setattr(workspaces, "GitCommand", recording)
    taken = source.reserve(root)
    assert path == taken.path
    assert "-" * 40 == note(root, path)  # wiped while a build holds the slot
    taken.release()
    assert first == note(root, path)  # taken, never reset: still clean
    with source.acquire(first, root) as again:
        assert path == again.path
    assert [] == started
    assert "-" * 40 == note(root, path)  # used (and not tidied): no note
    tidy(source.acquire(first, root))
    started.clear()
    with source.acquire(second, root) as again:
        assert {".gitignore": "build/\n*.pyc\n", "keep.txt": "two\n", "new.txt": "new\n"} == (
            files(again.path)
        )
    assert [("checkout", "--quiet", "--force", "--detach", second)] == [a[4:] for a in started]


def test_a_note_the_slot_does_not_match_is_not_trusted(tmp_path, repo):
    """The note names one sha, the slot's HEAD another (git used by hand): reset in full."""
    first, second = commit_second(repo)
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    path = tidy(source.acquire(first, root))
    git(path, "checkout", "-q", "--detach", second)
    (path / "untracked.txt").write_text("x")
    with source.acquire(first, root) as again:
        assert path == again.path
        assert {".gitignore", "keep.txt", "gone.txt"} == set(files(again.path))


def test_a_failed_tidy_leaves_no_note_and_the_next_build_resets(tmp_path, repo):
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    lease = source.acquire(sha, root)
    path = lease.path
    gitdir = Path((path / ".git").read_text().split(":", 1)[1].strip())
    (gitdir / "index.lock").write_text("")  # the tidy's checkout cannot take the index
    (path / "keep.txt").write_text("changed\n")
    tidy(lease)
    assert sha != note(root, path)
    (gitdir / "index.lock").unlink()
    with source.acquire(sha, root) as again:
        assert path == again.path
        assert "one\n" == files(again.path)["keep.txt"]


def test_a_build_that_dies_holding_a_tidied_slot_leaves_it_to_be_reset(tmp_path, repo):
    """The note is wiped when the slot is taken: a crash after that leaves no false note."""
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    path = tidy(source.acquire(sha, root))
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from pathlib import Path; from sauci.source.git import GitSource; "
            f"lease = GitSource({str(repo)!r}).acquire({sha!r}, Path({str(root)!r})); "
            "(lease.path / 'junk').write_text('x'); os._exit(9)",
        ],
        check=False,
    )
    with source.acquire(sha, root) as again:
        assert path == again.path
        assert "junk" not in files(again.path)


def test_concurrent_runner_builds_have_their_own_workspaces(tmp_path, repo):
    """Each step waits until all three builds run, then names its workspace."""
    (repo / ".sauci.yml").write_text(
        "steps:\n  s:\n    run: |\n"
        "      touch ../started.$SAUCI_BUILD_ID\n"
        "      for i in $(seq 200); do [ $(ls ../started.* | wc -l) -ge 3 ] && break; sleep 0.05; done\n"
        "      echo $SAUCI_WORKSPACE > ../ws.$SAUCI_BUILD_ID\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipeline")
    settings = Settings(data_dir=tmp_path / "data")
    store = MemoryStore()
    runner = LocalRunner(store=store, settings=settings, secrets={})
    for _ in range(3):
        store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))

    def worker() -> None:
        while runner.run_next() is not None:
            pass

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    builds = store.list_builds(limit=10)
    assert [Status.PASSED] * 3 == [b.status for b in builds]
    spaces = {(settings.workspaces_dir / f"ws.{b.id}").read_text().strip() for b in builds}
    assert 3 == len(spaces)


def test_a_planted_git_config_is_never_run(tmp_path, repo):
    """A step (sandboxed or not) rewrites the slot's .git to point at a git
    directory whose config runs a command: the next reset must not run it."""
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(sha, root) as lease:
        path = lease.path
        evil = tmp_path / "evil" / ".git"  # not bare: git would run the monitor on clean
        subprocess.run(["git", "init", "-q", str(evil.parent)], check=True)
        pwned = tmp_path / "pwned"
        with open(evil / "config", "a") as config:
            config.write(f"[core]\n\tfsmonitor = touch {pwned}; false\n")
        (path / ".git").write_text(f"gitdir: {evil}\n")
    with source.acquire(sha, root) as lease:
        assert path == lease.path
        assert {".gitignore", "keep.txt", "gone.txt"} == set(files(lease.path))
        assert sha == git(lease.path, "rev-parse", "HEAD").strip()  # .git points home again
    assert not pwned.exists()


def test_a_git_directory_in_place_of_the_git_file_makes_the_slot_anew(tmp_path, repo):
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(sha, root) as lease:
        (lease.path / ".git").unlink()
        git(lease.path, "init", "-q")
    with source.acquire(sha, root) as lease:
        assert (lease.path / ".git").is_file()
        assert sha == git(lease.path, "rev-parse", "HEAD").strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another uid")
def test_a_slot_a_sandbox_gave_to_another_uid_is_reset_in_place(tmp_path, repo):
    """NamespaceSandbox (as root) hands the workspace to the step's uid; git
    refuses to discover a repository owned by someone else, so SauCI names both."""
    first, second = commit_second(repo)
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    with source.acquire(first, root) as lease:
        path = lease.path
        (path / "junk").write_text("x")
        for dirpath, dirnames, filenames in os.walk(path):
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), 65534, 65534)
        os.lchown(path, 65534, 65534)
    inode = path.stat().st_ino
    with source.acquire(second, root) as lease:
        assert inode == lease.path.stat().st_ino  # reset, not made again
        assert {".gitignore", "keep.txt", "new.txt"} == set(files(lease.path))


def test_a_tidy_that_never_ends_delays_the_next_build_only_so_long(tmp_path, repo, monkeypatch):
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    lease = source.acquire(sha, root)
    stuck: list[tuple[int, threading.Event]] = []
    monkeypatch.setattr(workspaces, "TIDY_WAIT", 0.2)
    monkeypatch.setattr(
        workspaces.Lease, "_tidy", lambda self, handle, sha, done: stuck.append((handle, done))
    )
    lease.release(tidy=True)
    try:
        with source.acquire(sha, root) as other:  # waits 0.2 s, then makes a slot
            assert other.path != lease.path
    finally:
        for handle, done in stuck:  # what the tidy would have done at its end
            os.close(handle)
            workspaces._tidying.pop(lease.path, None)
            done.set()


def test_remove_slots_deletes_free_slots_and_leaves_one_in_use(tmp_path, repo):
    sha = git(repo, "rev-parse", "HEAD").strip()
    source = GitSource(repo)
    root = tmp_path / "workspaces"
    held = source.acquire(sha, root)
    free = source.acquire(sha, root)
    free_path = free.path
    free.release()
    other = tmp_path / "other-repo"  # another repository's slot is not touched
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (other / "f").write_text("x")
    git(other, "add", ".")
    git(other, "commit", "-q", "-m", "x")
    GitSource(other).acquire(git(other, "rev-parse", "HEAD").strip(), root).release()
    try:
        assert [free_path] == workspaces.remove_slots(repo, root, GitSource(repo))
        assert not free_path.exists()
        assert not (root / f".{free_path.name}.lock").exists()
        assert held.path.exists()
        assert 2 == len(git(repo, "worktree", "list").splitlines())  # the repo and the held slot
        assert 2 == len(git(other, "worktree", "list").splitlines())
    finally:
        held.release()
    assert [held.path] == workspaces.remove_slots(repo, root, GitSource(repo))
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_unregistering_a_repository_deletes_its_slots(tmp_path, repo, capsys):
    from sauci.cli import main

    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--color", "never"]
    assert 0 == main(["repo", "add", str(repo), "--hook", "none", "--poll", "60", *common])
    runner, store, settings = runner_for(tmp_path, repo)
    store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
    assert Status.PASSED is runner.run_next().status
    assert wait_for_tidying(timeout=30)
    slots = [p for p in settings.workspaces_dir.iterdir() if p.is_dir()]
    assert 1 == len(slots)
    capsys.readouterr()
    assert 0 == main(["repo", "remove", str(repo), *common])
    assert "1 workspace slot(s) deleted" in capsys.readouterr().out
    assert not slots[0].exists()
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_process_does_not_wait_at_its_exit_for_a_tidy_that_hangs(tmp_path):
    """`sauci serve` and `sauci worker` wait at most their bound for the tidies
    (wait_for_tidying) and then exit: a tidy that hangs (`git clean` of a huge
    tree on a stuck disk) must not hold the interpreter's exit."""
    script = (
        "import threading, sys\n"
        "from pathlib import Path\n"
        "from sauci.source.workspaces import tidy_in_background, wait_for_tidying\n"
        "tidy_in_background(Path(sys.argv[1]), threading.Event().wait)\n"
        "assert not wait_for_tidying(0.1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
