"""What `sauci run` prints of a step's output, through the real command on a
temporary git repository: the head and tail of a flood with a note (not
megabytes), and secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauci.cli._live import HEAD_BYTES, TAIL_BYTES
from sauci.core.logsink import format_size

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def make_repo(path: Path, pipeline: str) -> Path:
    path.mkdir(parents=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "flood"], cwd=path, check=True)
    return path


def sauci_run(repo: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != "SAUCI_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True,
        timeout=300,
        env={**environ, "SAUCI_DATA_DIR": str(data_dir), **env},
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


FLOOD = b"".join(b"%d\n" % i for i in range(1, 1_000_001))  # `seq 1 1000000`: 6.9 MB


def test_a_flood_shows_its_head_a_note_and_its_tail(tmp_path: Path, data_dir: Path) -> None:
    """7 MB of output: the terminal gets the first MiB, a note of how much was
    not shown and where the full log is, and the last lines; the log on disk
    keeps all of it."""
    repo = make_repo(
        tmp_path / "repo",
        "steps:\n  flood:\n    run: seq 1 1000000; echo the-last-line\n",
    )
    result = sauci_run(repo, data_dir)
    assert 0 == result.returncode, result.stderr.decode()
    out = result.stdout
    (log,) = (data_dir / "logs").rglob("flood.log")
    written = log.read_bytes()
    assert FLOOD + b"the-last-line\n" == written  # the full log on disk
    prefix = b"flood \xe2\x94\x82 "
    lines = [line for line in out.split(b"\n") if line.startswith(prefix)]
    (head_note,) = [i for i, line in enumerate(lines) if b"more than 1 MiB of output" in line]
    (tail_note,) = [i for i, line in enumerate(lines) if b"not shown" in line]
    head = b"".join(line.removeprefix(prefix) + b"\n" for line in lines[:head_note])
    tail = b"".join(line.removeprefix(prefix) + b"\n" for line in lines[tail_note + 1 :])
    # The first MiB as it came (its cut line ended), then the last lines, at most 64 KiB.
    assert written[:HEAD_BYTES] + b"\n" == head
    assert written.endswith(tail) and b"\n" == written[-len(tail) - 1 : -len(tail)]
    assert TAIL_BYTES - 10 <= len(tail) <= TAIL_BYTES
    assert b"the-last-line\n" == tail[-14:]
    not_shown = len(written) - HEAD_BYTES - len(tail)
    note = f"... {format_size(not_shown)} not shown; full log: {log}".encode()
    assert prefix + note == lines[tail_note]
    assert (
        b"more than 1 MiB of output; the last 64 KiB are shown when the step ends"
        in (lines[head_note])
    )


def test_output_below_the_head_is_shown_whole(tmp_path: Path, data_dir: Path) -> None:
    repo = make_repo(tmp_path / "repo", "steps:\n  small:\n    run: seq 1 20000\n")
    result = sauci_run(repo, data_dir)
    assert 0 == result.returncode, result.stderr.decode()
    shown = [
        line.removeprefix(b"small \xe2\x94\x82 ")
        for line in result.stdout.split(b"\n")
        if line.startswith(b"small \xe2\x94\x82 ")
    ]
    assert [str(i).encode() for i in range(1, 20001)] == shown
    assert b"not shown" not in result.stdout


def test_the_terminal_never_shows_a_secret(tmp_path: Path, data_dir: Path) -> None:
    """`sauci run` passes the user's environment; a secret the pipeline names is
    masked in what the terminal shows, also when printed in two pieces."""
    repo = make_repo(
        tmp_path / "repo",
        "steps:\n"
        "  deploy:\n"
        "    secrets: [DEPLOY_TOKEN]\n"
        "    run: |\n"
        '      echo "token: $DEPLOY_TOKEN"\n'
        '      printf "again: %s" "${DEPLOY_TOKEN:0:6}"; sleep 0.3; echo "${DEPLOY_TOKEN:6}"\n',
    )
    result = sauci_run(repo, data_dir, DEPLOY_TOKEN="tok-5ecret-1234")
    assert 0 == result.returncode, result.stderr.decode()
    assert b"tok-5ecret-1234" not in result.stdout + result.stderr
    assert b"deploy \xe2\x94\x82 token: ***\ndeploy \xe2\x94\x82 again: ***\n" in result.stdout


def test_a_head_filled_exactly_at_a_write_still_gets_its_notes() -> None:
    """The display itself, with a 10-byte head and 8-byte tail: the note comes
    with the first hidden byte, whatever the write sizes."""
    import io

    from sauci.cli._live import LiveDisplay
    from sauci.cli._render import Style
    from sauci.core.models import Build, Status, StepRun

    out = io.BytesIO()
    display = LiveDisplay(Style(io.StringIO(), color="never"), out=out, head=10, tail=8)
    build = Build(id=1, repo="r", status=Status.RUNNING)
    run = StepRun(build_id=1, name="s", position=0, log_path="/logs/s.log")
    display.step_started(build, run)
    for piece in (b"0123\n", b"5678\n", b"abc\n", b"def\n", b"ghi\n", b"jkl\n"):
        display.step_output(build, "s", piece)
    display.step_finished(build, run)
    assert [
        "▶ s",
        "s │ 0123",
        "s │ 5678",
        "s │ ... more than 10 bytes of output; the last 8 bytes are shown when the step ends"
        " (full log: /logs/s.log)",
        "s │ ... 8 bytes not shown; full log: /logs/s.log",
        "s │ ghi",
        "s │ jkl",
        "◌ queued s",  # the run record as handed in
    ] == out.getvalue().decode().splitlines()
