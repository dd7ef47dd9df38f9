"""The `sauci` command end to end on temporary git repositories."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.cli import main

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def make_repo(path: Path, pipeline: str, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / ".sauci.yml").write_text(pipeline)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "first <b>commit</b>"], cwd=path, check=True)
    return path


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(d))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    return d


def sauci(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


PASSING = "steps:\n  hello:\n    run: echo hello-from-step\n  world:\n    run: echo world\n"


def test_run_passes_and_records_the_build(tmp_path, capsys):
    repo = make_repo(tmp_path / "repo", PASSING)
    assert main(["run", str(repo), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "hello │ hello-from-step" in out
    assert re.search(r"build #1 ✔ passed", out)
    assert main(["builds", "--color", "never"]) == 0
    listing = capsys.readouterr().out
    assert "#1" in listing and "passed" in listing and "main" in listing
    assert main(["show", "1", "--color", "never"]) == 0
    shown = capsys.readouterr().out
    assert "hello" in shown and "world" in shown and "first <b>commit</b>" in shown
    assert main(["logs", "1", "hello"]) == 0
    assert capsys.readouterr().out == "hello-from-step\n"


def test_run_uses_the_working_tree_and_commit_a_clean_checkout(tmp_path, capsys):
    repo = make_repo(
        tmp_path / "repo", "steps:\n  s:\n    run: cat file.txt\n", {"file.txt": "committed\n"}
    )
    (repo / "file.txt").write_text("edited\n")
    assert main(["run", str(repo), "--color", "never"]) == 0
    assert "s │ edited" in capsys.readouterr().out
    assert main(["run", str(repo), "--commit", "HEAD", "--color", "never"]) == 0
    assert "s │ committed" in capsys.readouterr().out
    assert main(["run", str(repo), "--dirty", "--color", "never"]) == 0  # deprecated alias
    captured = capsys.readouterr()
    assert "s │ edited" in captured.out and "--dirty is deprecated" in captured.err
    # the workspace is gone afterwards
    assert not any((Path(os.environ["SAUCI_DATA_DIR"]) / "workspaces").iterdir())


def test_failed_step_exits_1_with_summary(tmp_path, capsys):
    repo = make_repo(
        tmp_path / "repo", "steps:\n  bad:\n    run: echo oops; exit 7\n  next:\n    run: 'true'\n"
    )
    assert main(["run", str(repo), "--color", "never", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "bad │" not in out  # folded
    assert "last lines of bad" in out and "oops" in out
    assert "exit code 7" in out
    assert "skipped: needs 'bad', which failed" in out


def test_broken_pipeline_exits_2_with_location_and_no_traceback(tmp_path):
    repo = make_repo(tmp_path / "repo", "steps:\n  a:\n    run: 'true'\n    tiemout: 5s\n")
    result = sauci("run", str(repo))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert ".sauci.yml:4:5" in result.stderr and "timeout" in result.stderr


def test_validate_reports_every_problem(tmp_path):
    path = tmp_path / ".sauci.yml"
    path.write_text(
        "steps:\n  a:\n    run: 'true'\n    needs: [b]\n  c:\n    run: [1, {x: 1}]\n    retries: -1\n"
    )
    result = sauci("validate", str(path), "--color", "never")
    assert result.returncode == 2
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(path))]
    assert len(lines) >= 3, result.stdout
    assert "unknown step 'b'" in result.stdout


def test_validate_ok(tmp_path):
    (tmp_path / ".sauci.yml").write_text(PASSING)
    result = sauci("validate", str(tmp_path), "--color", "never")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: 2 steps" in result.stdout
    (tmp_path / ".sauci.yml").write_text("steps:\n  only:\n    run: 'true'\n")
    result = sauci("validate", str(tmp_path), "--color", "never")
    assert "valid: 1 step\n" in result.stdout


def test_missing_repo_is_a_clear_error(tmp_path):
    result = sauci("run", str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_build_is_a_clear_error(tmp_path):
    result = sauci("show", "999")
    assert result.returncode != 0
    assert "999" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": "[project]\nname='x'\n"}, "pytest"),
        ({"package.json": "{}"}, "npm test"),
        ({"Makefile": "test:\n\ttrue\n"}, "make test"),
        ({}, "echo"),
    ],
)
def test_init_guesses_a_starter_that_validates(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = sauci("init", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / ".sauci.yml").read_text()
    assert expected in text and text.startswith("#")
    assert sauci("validate", str(tmp_path)).returncode == 0
    assert sauci("init", str(tmp_path)).returncode == 2  # refuses to overwrite


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["Ctrl-C", "kill", "hang-up"]
)
def test_ctrl_c_or_kill_cancels_and_leaves_no_process(tmp_path, sig):
    """SIGTERM (`kill`, `timeout`, a service manager) and SIGHUP (a closed
    terminal) are a Ctrl-C too: before, they ended sauci at once, with the step
    still running, the build "running" and the workspace kept."""
    marker = f"sauci-test-{os.getpid()}-{time.time_ns()}"
    data = tmp_path / "data"
    # two commands, so bash stays alive with the marker in its command line
    repo = make_repo(tmp_path / "repo", f"steps:\n  hang:\n    run: sleep 300; echo {marker}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SAUCI_DATA_DIR": str(data)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _pids_with(marker):
        time.sleep(0.05)
    shells = _pids_with(marker)
    assert shells, "step never started"
    children = [pid for pid in _all_pids() if _ppid(pid) in shells]
    assert children, "the step's sleep is not running"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "cancelled" in out
    alive = [pid for pid in shells + children if _alive(pid)]
    assert not alive
    assert not any((data / "workspaces").iterdir())


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie waiting for its reaper does not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _all_pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids_with(marker: str) -> list[int]:
    pids = []
    for pid in _all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"sauci" not in cmdline.split(b"\0")[0]:
            pids.append(pid)
    return pids


def test_demo_builds_the_sample_repository(tmp_path):
    result = sauci("demo", "--dir", str(tmp_path / "demo"), "--color", "never")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build #1 ✔ passed" in result.stdout
    assert "experimental" in result.stdout and "failed (allowed)" in result.stdout


def test_store_copy_and_bench_stores(tmp_path):
    assert sauci("demo", "--dir", str(tmp_path / "demo")).returncode == 0
    source = f"sqlite:///{Path(os.environ['SAUCI_DATA_DIR']) / 'sauci.db'}"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    copied = sauci("store", "copy", "--from", source, "--to", target)
    assert copied.returncode == 0, copied.stderr
    assert "copied 1 builds" in copied.stdout and "verified" in copied.stdout
    refused = sauci("store", "copy", "--from", source, "--to", target)  # holds builds now
    assert refused.returncode == 2 and "--merge" in refused.stderr
    again = sauci("store", "copy", "--from", source, "--to", target, "--merge")  # nothing new
    assert again.returncode == 0 and "copied 0 builds" in again.stdout
    chart = tmp_path / "stores.svg"
    bench = sauci(
        "bench",
        "stores",
        "--url",
        "memory://",
        "--builds",
        "5",
        "--steps",
        "2",
        "--svg",
        str(chart),
    )
    assert bench.returncode == 0, bench.stderr
    assert "memory" in bench.stdout and "writes/s" in bench.stdout
    assert chart.read_text().startswith("<svg")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-builds", "0"], "--max-builds must be >= 1"),
        (["--idle-tick", "0"], "--idle-tick must be > 0"),
    ],
)
def test_a_bad_server_option_is_a_clear_error(tmp_path, flags, message):
    result = sauci("serve", "--no-ui", "--data-dir", str(tmp_path / "data"), *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"sauci: error: {message}" in result.stderr
    assert "Traceback" not in result.stderr


HOSTILE_LOG = (
    r"printf '\033]52;c;cm0gLXJmIH4K\007\033]0;pwned\007\033[2J\033[1;1H\033P+q544e\033\\"
    r"\302\233"
    "6n\\033[31mred\\033[0m\\tok\\r\\n\\033[21tend'"
)


@pytest.mark.parametrize("color", ["always", "never"])
def test_logs_never_drive_the_operators_terminal(tmp_path, capsys, color):
    """Hostile: a pushed step prints escapes that set the operator's clipboard
    (OSC 52), title, clear the screen, query the terminal (DCS, a C1 CSI in
    UTF-8, CSI 21t) for `sauci logs` to pass on. Only colours get through,
    and only with colour on."""
    repo = make_repo(tmp_path / "repo", f"steps:\n  s:\n    run: {HOSTILE_LOG}\n")
    assert main(["run", str(repo), "--color", "never"]) == 0
    capsys.readouterr()
    assert main(["logs", "1", "s", "--color", color]) == 0
    out = capsys.readouterr().out
    colour = "\x1b[31m" + "red" + "\x1b[0m" if color == "always" else "red"
    assert out == f"6n{colour}\tok\r\nend"


def test_an_escape_cut_between_two_chunks_never_reaches_the_terminal():
    from sauci.cli._ansi import LogForTerminal

    data = b"a\n\x1b]52;c;cm0gLXJmIH4K\x07b\x1b[32mc\n" * 3 + b"tail\x1b]0;t"
    for size in (1, 2, 5, 7):
        shown = LogForTerminal(colour=True)
        out = b"".join(shown.feed(data[i : i + size]) for i in range(0, len(data), size))
        out += shown.flush()
        assert out == b"a\nb\x1b[32mc\n" * 3 + b"tail"
    long = LogForTerminal(colour=False)
    assert 64 * 1024 < len(long.feed(b"x" * 100_000))  # a line without end is not held whole
