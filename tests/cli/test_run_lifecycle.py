"""`sauci run` from start to exit: it runs the committed pipeline, records the
commit, leaves no workspace behind whatever happens (errors, Ctrl-C), and the
`sauci` executable and `python -m sauci` exit with the build's status."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from signals import default_ctrl_c

from sauci.cli import main

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


def commit(repo: Path, pipeline: str, message: str = "change") -> None:
    repo.mkdir(exist_ok=True)
    (repo / ".sauci.yml").write_text(pipeline)
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "sub").mkdir()
    (repo / "sub" / "f").write_text("x")
    commit(repo, "steps:\n  s:\n    run: echo from-the-step\n", "the <message>")
    return repo


def workspaces(data_dir: Path) -> list[Path]:
    root = data_dir / "workspaces"
    return sorted(root.iterdir()) if root.exists() else []


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        preexec_fn=default_ctrl_c,
    )


# -- what it runs and records ----------------------------------------------------------


def test_run_records_the_commit_and_cleans_up(repo, data_dir, capsys):
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert "s │ from-the-step" in capsys.readouterr().out
    assert 0 == main(["show", "1", "--color", "never"])
    shown = capsys.readouterr().out
    assert "the <message>" in shown and "Tester" in shown
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_committed_change_to_the_pipeline_is_run(tmp_path, capsys):
    repo = tmp_path / "changing"
    commit(repo, "steps:\n  s:\n    run: echo first-version\n")
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert "s │ first-version" in capsys.readouterr().out
    commit(repo, "steps:\n  t:\n    run: echo second-version\n")
    assert 0 == main(["run", str(repo), "--color", "never"])
    out = capsys.readouterr().out
    assert "t │ second-version" in out and "first-version" not in out


def test_keep_workspace_keeps_the_checkout(tmp_path, data_dir):
    repo = tmp_path / "kept"
    commit(repo, "steps:\n  s:\n    run: touch made-by-step\n")
    assert 0 == main(["run", str(repo), "--keep-workspace", "--color", "never"])
    (kept,) = workspaces(data_dir)
    assert (kept / "made-by-step").exists() and (kept / ".sauci.yml").exists()


def test_a_settings_file_decides_the_data_directory(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SAUCI_DATA_DIR")
    elsewhere = tmp_path / "elsewhere"
    (repo / "sauci.toml").write_text(f'data_dir = "{elsewhere}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "settings")
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert "s │ from-the-step" in capsys.readouterr().out
    assert (elsewhere / "sauci.db").exists()
    assert [] == workspaces(elsewhere)


# -- errors and Ctrl-C leave nothing -----------------------------------------------------


def test_a_missing_commit_is_an_error_not_a_traceback(tmp_path, capsys):
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert 2 == main(["run", str(repo), "--color", "never"])
    assert "sauci init" in capsys.readouterr().err  # no pipeline file: how to make one
    assert 2 == main(["run", str(repo), "--commit", "HEAD", "--color", "never"])
    assert "'HEAD' is not a commit" in capsys.readouterr().err


def test_a_bad_setting_leaves_no_workspace(repo, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("SAUCI_JOBS", "many")
    assert 2 == main(["run", str(repo), "--color", "never"])
    assert "SAUCI_JOBS" in capsys.readouterr().err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_commit_git_cannot_read_is_gits_own_error(repo, data_dir, capsys):
    """HEAD names a commit whose object is missing: git's error, no traceback, nothing left."""
    (repo / ".git" / "refs" / "heads" / "main").write_text("1" * 40 + "\n")
    assert 2 == main(["run", str(repo), "--color", "never"])
    err = capsys.readouterr().err
    assert err.startswith("sauci: error:") and "Traceback" not in err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())
    assert not os.path.exists(repo / ".git" / "worktrees") or not any(
        (repo / ".git" / "worktrees").iterdir()
    )


@pytest.mark.parametrize(
    "where", ["importing the reader", "loading the pipeline"], ids=lambda w: w.split()[-1]
)
def test_ctrl_c_while_the_command_runs_leaves_no_workspace(
    repo, data_dir, monkeypatch, capsys, where
):
    """Found by sending SIGINT to `sauci run` at 66-69 ms: the workspace the
    command had made was left behind."""
    from sauci.cli import _local

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "importing the reader":  # while git checks out
        monkeypatch.setattr(_local, "_import_reader", interrupted)
    else:
        import sauci.core.pipeline

        monkeypatch.setattr(sauci.core.pipeline, "load_pipeline", interrupted)
    assert 130 == main(["run", str(repo), "--color", "never"])
    assert "interrupted" in capsys.readouterr().err
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_worktree_add_ended_while_it_set_up_is_removed_whole(repo, tmp_path):
    """`git worktree add` killed early leaves an empty directory and an entry
    locked "initializing" that `git worktree prune` keeps: both go."""
    from sauci.source.git import GitSource

    dest = tmp_path / "half-made"
    dest.mkdir()
    entry = repo / ".git" / "worktrees" / "half-made"
    entry.mkdir(parents=True)
    (entry / "locked").write_text("initializing\n")
    GitSource(repo).remove(dest)
    assert not dest.exists() and not entry.exists()
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_an_entry_locked_by_a_person_is_kept(repo, tmp_path):
    from sauci.source.git import GitSource

    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "kept"))
    git(repo, "worktree", "lock", "--reason", "mine", str(tmp_path / "kept"))
    GitSource(repo)._drop_unfinished_entry(tmp_path / "kept")
    assert (repo / ".git" / "worktrees" / "kept" / "locked").exists()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_while_a_worktree_is_deleted_takes_effect_after_it(name):
    """The workspace's directory and its entry under worktrees/ are deleted
    together: a Ctrl-C in between would leave the entry behind."""
    proc = run_python(
        f"""
        import os, signal
        from sauci.cli import _stop_signals_as_interrupt
        from sauci.source.git import _uninterrupted

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
    assert "['block finished', 'interrupted after']" == proc.stdout.strip(), proc.stderr


# -- the executable -------------------------------------------------------------------------


def test_ctrl_c_before_a_command_takes_over_is_exit_130_without_a_traceback():
    proc = run_python(
        """
        import sys
        import sauci.cli

        def interrupted(argv):
            raise KeyboardInterrupt  # as Ctrl-C while the modules import

        sauci.cli._main = interrupted
        sys.exit(sauci.cli.main())
        """
    )
    assert 130 == proc.returncode
    assert "sauci: interrupted" == proc.stderr.strip()


@pytest.mark.parametrize("module", [True, False], ids=["python -m sauci", "console script"])
def test_the_executable_exits_with_the_build_status(tmp_path, module):
    repo = tmp_path / "failing"
    commit(repo, "steps:\n  ok:\n    run: echo fine\n  bad:\n    run: exit 4\n")
    entry = (
        "import runpy; runpy.run_module('sauci', run_name='__main__')"
        if module
        else "from sauci.cli import main; sys.exit(main())"  # what the console script does
    )
    proc = run_python(
        f"import os, sys; os.environ['SAUCI_DATA_DIR'] = sys.argv[1]; "
        f"sys.argv[1:] = ['run', '--color', 'never']; {entry}",
        str(tmp_path / "data"),
        cwd=repo,
    )
    assert 1 == proc.returncode, proc.stderr
    assert "ok │ fine" in proc.stdout
    assert "build #1" in proc.stdout and "failed" in proc.stdout.splitlines()[-1]


def test_steps_start_with_no_signal_blocked(tmp_path):
    """A step's signal mask blocks nothing: Ctrl-C and kill reach what it starts."""
    repo = tmp_path / "mask"
    commit(repo, "steps:\n  mask:\n    run: grep SigBlk /proc/self/status\n")
    proc = run_python(
        "import os, sys; os.environ['SAUCI_DATA_DIR'] = sys.argv[1]; "
        "sys.argv[1:] = ['run', '--color', 'never']; "
        "import runpy; runpy.run_module('sauci', run_name='__main__')",
        str(tmp_path / "data"),
        cwd=repo,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    mask = next(line for line in proc.stdout.splitlines() if "SigBlk" in line).split()[-1]
    assert 0 == int(mask, 16)
