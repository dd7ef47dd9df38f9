"""The `sauci` executable's wrapper (sauci.cli._console): the collector is
paused only until the command's modules are imported, main()'s exit code
and output survive the quick exit, and a program that turned the collector
off itself keeps it off. Each case runs in its own interpreter, since the
wrapper changes process-wide gc state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from signals import default_ctrl_c

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        preexec_fn=default_ctrl_c,
    )


def test_collector_is_paused_during_imports_then_resumed_with_startup_frozen():
    proc = run_python(
        """
        import gc
        import sauci.cli
        from sauci.cli._console import console, imports_done

        def fake_main():
            print("paused" if not gc.isenabled() else "running")
            imports_done()
            print("resumed" if gc.isenabled() else "still paused")
            print("frozen" if gc.get_freeze_count() > 0 else "nothing frozen")
            return 7

        sauci.cli.main = fake_main
        console()
        """
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.split() == ["paused", "resumed", "frozen"]


def test_a_program_that_disabled_the_collector_keeps_it_disabled():
    proc = run_python(
        """
        import atexit, gc
        import sauci.cli
        from sauci.cli._console import console, imports_done

        gc.disable()

        def fake_main():
            imports_done()
            print("enabled" if gc.isenabled() else "disabled")
            return 0

        atexit.register(lambda: print("at exit:", "enabled" if gc.isenabled() else "disabled"))
        sauci.cli.main = fake_main
        console()
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["disabled", "at exit: disabled"]


def test_collection_resumes_even_when_main_raises():
    proc = run_python(
        """
        import atexit, gc
        import sauci.cli
        from sauci.cli._console import console

        def fake_main():
            raise SystemExit(2)

        atexit.register(lambda: print("enabled" if gc.isenabled() else "disabled"))
        sauci.cli.main = fake_main
        console()
        """
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip() == "enabled"


def test_ctrl_c_before_a_command_takes_over_is_exit_130_without_a_traceback():
    proc = run_python(
        """
        import sauci.cli
        from sauci.cli._console import console

        def fake_main():
            raise KeyboardInterrupt  # as Ctrl-C while the modules import

        sauci.cli.main = fake_main
        console()
        """
    )
    assert proc.returncode == 130
    assert proc.stderr.strip() == "sauci: interrupted"


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_signal_is_held_until_sauci_lets_it_through(name):
    """Raised at any bytecode, inside the import machinery, the signal's
    exception could leave the import lock held (a step thread importing then
    waits forever); held, it is raised at release_signals() instead."""
    proc = run_python(
        f"""
        import os, signal
        import sauci.cli
        from sauci.cli._console import console, imports_done, release_signals

        def fake_main():
            sauci.cli._stop_signals_as_interrupt()  # what main() does for `run`
            os.kill(os.getpid(), signal.{name})  # as if while a module imports
            print("still importing", flush=True)
            imports_done()
            print("still held", flush=True)
            try:
                release_signals()
            except KeyboardInterrupt:
                print("interrupted when let through", flush=True)
                return 130
            print("never interrupted", flush=True)
            return 0

        sauci.cli.main = fake_main
        console()
        """
    )
    assert proc.stdout.split("\n")[:3] == [
        "still importing",
        "still held",
        "interrupted when let through",
    ]
    assert proc.returncode == 130, proc.stderr


def test_sauci_run_started_steps_do_not_inherit_held_signals(tmp_path):
    """Held signals are let through before any step starts: a step's mask
    shows none of them blocked."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  mask:\n    run: grep SigBlk /proc/self/status\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*GIT, *args], cwd=repo, check=True)
    proc = run_python(
        "import os, sys; os.environ['SAUCI_DATA_DIR'] = sys.argv[1]; "
        "sys.argv[1:] = ['run', '--color', 'never']; "
        "from sauci.cli._console import console; console()",
        str(tmp_path / "data"),
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mask = next(line for line in proc.stdout.splitlines() if "SigBlk" in line).split()[-1]
    assert int(mask, 16) == 0


@pytest.mark.parametrize("module", [True, False], ids=["python -m sauci", "console script"])
def test_a_real_run_through_the_wrapper_exits_with_the_build_status(tmp_path, module):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  ok:\n    run: echo fine\n  bad:\n    run: exit 4\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    entry = (
        "import runpy; runpy.run_module('sauci', run_name='__main__')"
        if module
        else "from sauci.cli._console import console; console()"
    )
    proc = run_python(
        f"import os, sys; os.environ['SAUCI_DATA_DIR'] = sys.argv[1]; "
        f"sys.argv[1:] = ['run', '--color', 'never']; {entry}",
        str(tmp_path / "data"),
        cwd=repo,
    )
    assert proc.returncode == 1, proc.stderr
    assert "ok │ fine" in proc.stdout
    assert "build #1" in proc.stdout and "failed" in proc.stdout.splitlines()[-1]
