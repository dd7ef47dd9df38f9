"""`sauci run` starts git before importing its engine (sauci.cli._early) only
when it can be sure, and whatever happens leaves no workspace behind."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from signals import default_ctrl_c

from sauci._gitfiles import head, locate
from sauci.cli import _early, main
from sauci.cli._local import _adopt

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(d))
    for name in ("SAUCI_STORE", "SAUCI_CONFIG", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    return d


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  s:\n    run: echo from-the-step\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "f").write_text("x")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the <message>")
    return repo


def run_args(path: Path, *extra: str) -> argparse.Namespace:
    from sauci.cli import build_parser

    return build_parser("run").parse_args(["run", str(path), *extra])


def workspaces(data_dir: Path) -> list[Path]:
    root = data_dir / "workspaces"
    return sorted(root.iterdir()) if root.exists() else []


# -- reading git's files ---------------------------------------------------------


def test_head_reads_loose_packed_and_detached_refs_as_git_does(repo):
    git_dir = repo / ".git"
    sha = git(repo, "rev-parse", "HEAD")
    assert (sha, "refs/heads/main") == head(git_dir)
    git(repo, "pack-refs", "--all")
    assert not (git_dir / "refs" / "heads" / "main").exists()
    assert (sha, "refs/heads/main") == head(git_dir)
    git(repo, "checkout", "-q", "--detach")
    assert (sha, "") == head(git_dir)


def test_head_gives_up_on_what_it_does_not_know(repo):
    git_dir = repo / ".git"
    (git_dir / "HEAD").write_text("ref: refs/heads/.invalid\n")  # reftable's placeholder
    assert head(git_dir) is None
    (git_dir / "HEAD").write_text("ref: refs/heads/no-such-branch\n")  # unborn branch
    assert head(git_dir) is None
    (git_dir / "HEAD").write_text("ref: refs/tags/v1\n")
    assert head(git_dir) is None


def test_locate_finds_a_plain_work_tree_from_a_subdirectory(repo):
    assert (repo.resolve(), (repo / ".git").resolve()) == locate(repo / "sub")


def test_locate_gives_up_on_linked_worktrees_and_git_variables(repo, tmp_path, monkeypatch):
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "--detach", str(linked))
    assert locate(linked) is None  # .git is a file there
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert locate(repo) is None
    monkeypatch.delenv("GIT_DIR")
    assert locate(tmp_path / "nowhere") is None


# -- when it starts ----------------------------------------------------------------


def test_it_starts_for_a_plain_repository_and_is_adopted(repo, data_dir, capsys):
    args = run_args(repo / "sub")
    early = _early.start(args)
    assert early is not None
    assert git(repo, "rev-parse", "HEAD") == early.sha and "refs/heads/main" == early.ref
    assert data_dir / "workspaces" == early.workspace.parent
    commit = _adopt(early, early.workspace)
    assert commit is not None and "Tester <t@example.com>" == commit.author
    assert "the <message>" == commit.message
    assert (early.workspace / ".sauci.yml").exists()
    assert _adopt(early, None) is None  # not wanted: removed
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


@pytest.mark.parametrize(
    "why",
    ["dirty", "keep-workspace", "settings file", "SAUCI_CONFIG", "linked worktree"],
)
def test_it_does_not_start_when_it_cannot_be_sure(repo, tmp_path, monkeypatch, why):
    path, extra = repo, []
    if why == "dirty":
        extra = ["--dirty"]
    elif why == "keep-workspace":
        extra = ["--keep-workspace"]
    elif why == "settings file":
        (repo / "sauci.toml").write_text(f'data_dir = "{tmp_path / "elsewhere"}"\n')
        monkeypatch.delenv("SAUCI_DATA_DIR")
    elif why == "SAUCI_CONFIG":
        monkeypatch.setenv("SAUCI_CONFIG", str(tmp_path / "sauci.toml"))
        monkeypatch.delenv("SAUCI_DATA_DIR")
    else:
        path = tmp_path / "linked"
        git(repo, "worktree", "add", "-q", "--detach", str(path))
    assert _early.start(run_args(path, *extra)) is None


def test_a_settings_file_still_decides_the_data_directory(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SAUCI_DATA_DIR")
    elsewhere = tmp_path / "elsewhere"
    (repo / "sauci.toml").write_text(f'data_dir = "{elsewhere}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "settings")
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert "s │ from-the-step" in capsys.readouterr().out
    assert (elsewhere / "sauci.db").exists()
    assert [] == workspaces(elsewhere)


# -- whatever happens, nothing is left -----------------------------------------------


def test_run_through_the_early_start_records_the_commit_and_cleans_up(repo, data_dir, capsys):
    assert 0 == main(["run", str(repo), "--color", "never"])
    out = capsys.readouterr().out
    assert "s │ from-the-step" in out
    assert 0 == main(["show", "1", "--color", "never"])
    shown = capsys.readouterr().out
    assert "the <message>" in shown and "Tester" in shown
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_bad_setting_after_the_early_start_leaves_no_workspace(
    repo, data_dir, monkeypatch, capsys
):
    monkeypatch.setenv("SAUCI_JOBS", "many")
    assert 2 == main(["run", str(repo), "--color", "never"])
    assert "SAUCI_JOBS" in capsys.readouterr().err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_commit_git_cannot_read_falls_back_to_gits_own_error(repo, data_dir, capsys):
    """HEAD names a commit whose object is missing: the early checkout fails,
    and the usual way reports it."""
    (repo / ".git" / "refs" / "heads" / "main").write_text("1" * 40 + "\n")
    assert 3 == main(["run", str(repo), "--color", "never"])
    err = capsys.readouterr().err
    assert err.startswith("sauci: error:") and "Traceback" not in err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())
    assert not os.path.exists(repo / ".git" / "worktrees") or not any(
        (repo / ".git" / "worktrees").iterdir()
    )


def test_sauci_run_loads_no_record_classes(repo, data_dir):
    """Each attrs class costs 0.3-1 ms of every start: `sauci run` makes the
    ones it uses, none of sauci.core.records, and no service or schedule
    classes (sauci.core.pipeline_parts) for a pipeline without them, whether
    the pipeline is parsed or comes from the cache; the protocol classes of
    sauci.typing are for type checkers only."""
    code = (
        "import sys; from sauci.cli import main; "
        f"code = main(['run', {str(repo)!r}, '--quiet']); "
        "print(code, 'sauci.core.records' in sys.modules, "
        "'sauci.core.pipeline_parts' in sys.modules, 'sauci.typing' in sys.modules)"
    )
    env = {**os.environ, "SAUCI_DATA_DIR": str(data_dir)}
    for _ in ("parsed", "from the cache"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.split()
        assert ["0", "False", "False", "False"] == out[-4:]


def test_ctrl_c_before_the_command_takes_the_checkout_leaves_nothing(
    repo, data_dir, monkeypatch, capsys
):
    """The early checkout is made while the engine is imported; an interrupt
    in that time (here: as the command starts) still removes it."""
    from sauci.cli import _local

    started: list[object] = []
    real_start = _early.start

    def spy(args):
        early = real_start(args)
        started.append(early)
        return early

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_early, "start", spy)
    monkeypatch.setattr(_local, "cmd_run", interrupted)
    assert 130 == main(["run", str(repo), "--color", "never"])
    assert "interrupted" in capsys.readouterr().err
    assert started and started[0] is not None  # git had started
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


@pytest.mark.parametrize("early", [True, False], ids=["early checkout", "usual checkout"])
@pytest.mark.parametrize(
    "where", ["importing the engine", "loading the pipeline"], ids=lambda w: w.split()[-1]
)
def test_ctrl_c_while_the_command_runs_leaves_no_workspace(
    repo, data_dir, monkeypatch, capsys, early, where
):
    """Found by sending SIGINT to `sauci run` at 66-69 ms: the workspace the
    command had taken over (early or usual) was left behind."""
    from sauci.cli import _local

    if not early:
        monkeypatch.setattr(_early, "start", lambda args: None)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "importing the engine":
        monkeypatch.setattr(_local, "_import_engine", interrupted)
    else:
        import sauci.core.pipeline

        monkeypatch.setattr(sauci.core.pipeline, "load_pipeline", interrupted)
    assert 130 == main(["run", str(repo), "--color", "never"])
    assert "interrupted" in capsys.readouterr().err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_ctrl_c_while_git_is_being_started_undoes_what_started(repo, data_dir, monkeypatch, capsys):
    """Ctrl-C between starting `git worktree add` and `git show`: the first is
    waited for and its workspace removed, and main() says "interrupted"."""
    real = _early.GitCommand
    calls: list[object] = []

    def command(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_early, "GitCommand", command)
    assert 130 == main(["run", str(repo), "--color", "never"])
    assert "sauci: interrupted" in capsys.readouterr().err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())
    assert not (repo / ".git" / "worktrees").exists() or not any(
        (repo / ".git" / "worktrees").iterdir()
    )


def test_a_worktree_add_ended_while_it_set_up_is_removed_whole(repo, tmp_path):
    """`git worktree add` killed early leaves an empty directory and an entry
    locked "initializing" that `git worktree prune` keeps: both go."""
    from sauci.git import GitSource

    dest = tmp_path / "half-made"
    dest.mkdir()
    entry = repo / ".git" / "worktrees" / "half-made"
    entry.mkdir(parents=True)
    (entry / "locked").write_text("initializing\n")
    GitSource(repo).remove(dest)
    assert not dest.exists() and not entry.exists()
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_an_entry_locked_by_a_person_is_kept(repo, tmp_path):
    from sauci.git import GitSource

    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "kept"))
    git(repo, "worktree", "lock", "--reason", "mine", str(tmp_path / "kept"))
    GitSource(repo)._drop_unfinished_entry(tmp_path / "kept")
    assert (repo / ".git" / "worktrees" / "kept" / "locked").exists()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_while_a_worktree_is_deleted_takes_effect_after_it(name):
    """The workspace's directory and its entry under worktrees/ are deleted
    together: a Ctrl-C in between would leave the entry behind."""
    code = textwrap.dedent(
        f"""
        import os, signal
        from sauci.cli import _stop_signals_as_interrupt
        from sauci.git import _uninterrupted

        _stop_signals_as_interrupt()  # as sauci run has it: SIGTERM is a Ctrl-C
        done = []
        try:
            with _uninterrupted():
                os.kill(os.getpid(), signal.{name})
                done.append("block finished")
        except KeyboardInterrupt:
            done.append("interrupted after")
        print(done)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=default_ctrl_c,
    )
    assert out.stdout.strip() == "['block finished', 'interrupted after']"


# -- the cgroup probe -------------------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("--dirty",)], ids=["early checkout", "gave up"])
def test_the_cgroup_probe_starts_after_git_and_also_when_start_gives_up(
    repo, data_dir, monkeypatch, extra
):
    """A thread move waiting for its RCU grace period holds up every fork of the
    process, so git's processes must already be running when the probe starts."""
    order: list[str] = []
    real_command = _early.GitCommand

    def command(*args, **kwargs):
        order.append("git")
        return real_command(*args, **kwargs)

    monkeypatch.setattr(_early, "GitCommand", command)
    monkeypatch.setattr(_early, "prefetch", lambda: order.append("probe"))
    early = _early.start(run_args(repo, *extra))
    try:
        assert order == (["git", "git", "probe"] if not extra else ["probe"])
    finally:
        if early is not None:
            early.discard()
    assert [] == workspaces(data_dir)
