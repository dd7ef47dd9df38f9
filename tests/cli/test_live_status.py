"""What `sauci run` prints of step output: escape sequences taken out without
colour (NO_COLOR, a pipe), and on a terminal a live line of the running steps."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.cli._ansi import strip_ansi
from sauci.cli._live import LiveDisplay
from sauci.cli._render import Style
from sauci.core.models import Build, Status, StepRun

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

# A step that prints colour, a window title and a hyperlink, then is silent a while.
PIPELINE = r"""steps:
  quiet-one:
    run: |
      printf '\033[31mred\033[0m \033]0;title\007plain \033]8;;http://x\033\\link\033]8;;\033\\\n'
      sleep 3.5
      echo after-the-silence
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / ".sauci.yml").write_text(PIPELINE)
    return repo


def run_on_a_terminal(repo: Path, env: dict[str, str]) -> bytes:
    """`sauci run` with its output on a pseudo-terminal; all it wrote."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sauci", "run"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm", **env},
    )
    os.close(secondary)
    out = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    assert 0 == proc.returncode, out.decode(errors="replace")
    return bytes(out)


def step_lines(out: bytes) -> list[bytes]:
    return [line for line in out.replace(b"\r\n", b"\n").split(b"\n") if b"\xe2\x94\x82 " in line]


def test_piped_output_has_no_escape_sequences_and_no_live_line(repo):
    ran = subprocess.run(
        [sys.executable, "-m", "sauci", "run"],
        cwd=repo,
        capture_output=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
    )
    assert 0 == ran.returncode, ran.stderr
    assert b"\x1b" not in ran.stdout and b"\r" not in ran.stdout
    assert b"quiet-one \xe2\x94\x82 red plain link\n" in ran.stdout


def test_on_a_terminal_a_live_line_shows_the_silent_step_and_its_time(repo):
    out = run_on_a_terminal(repo, {"NO_COLOR": ""})  # empty: colour stays on
    # Colour on: the step's own escape sequences reach the terminal.
    assert any(b"\x1b[31mred\x1b[0m" in line for line in step_lines(out))
    # The live line, drawn over itself while the step is silent...
    assert b"\r\x1b[K" in out
    assert re.search(rb"\r\x1b\[K\x1b\[36m\xe2\x96\xb6\x1b\[0m quiet-one [1-9]s", out), out
    # ...and wiped before the step's next output is printed.
    last_line = out.split(b"after-the-silence")[0].rsplit(b"\n", 1)[1]
    drawn_then_wiped, _, printed = last_line.rpartition(b"\r\x1b[K")
    assert re.search(rb"quiet-one \ds$", drawn_then_wiped), last_line
    assert b"quiet-one" in printed and not re.search(rb"quiet-one \ds", printed)


def test_no_color_on_a_terminal_strips_the_steps_escape_sequences(repo):
    out = run_on_a_terminal(repo, {"NO_COLOR": "1"})
    lines = step_lines(out)
    assert [b"quiet-one \xe2\x94\x82 red plain link"] == [
        line.split(b"\r\x1b[K")[-1] for line in lines if b"red" in line
    ]
    assert re.search(rb"\r\x1b\[K\xe2\x96\xb6 quiet-one [1-9]s", out)  # not colour: it stays


def test_the_live_line_is_wiped_before_output_and_at_the_end():
    """LiveDisplay alone, its clock fast: the status line comes while a step is
    silent, goes before any output line, and is gone when the build ends."""
    out = io.BytesIO()
    display = LiveDisplay(Style(color="never"), out=out, live=True, tick=0.02)
    build = Build(id=1, repo="r")
    step = StepRun(build_id=1, name="install", status=Status.RUNNING, started_at=time.time())
    with display.running():
        display.step_started(build, step)
        deadline = time.monotonic() + 30
        while not re.search(rb"\xe2\x96\xb6 install \d+s", out.getvalue()):
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)
        display.step_output(build, "install", b"\x1b[1mcollecting\x1b[0m\n")
        display.step_finished(build, step)
    text = out.getvalue()
    assert re.search(rb"\r\x1b\[K\xe2\x96\xb6 install \d+s", text)
    assert b"\r\x1b[Kinstall \xe2\x94\x82 collecting\n" in text  # wiped, then the line, no colour
    after_the_end = text.rsplit(b"\n", 1)[-1].rpartition(b"\r\x1b[K")[2]
    assert b"" == after_the_end  # no status line left on the screen


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (b"\x1b[1;31mbold red\x1b[0m", b"bold red"),
        (b"\x1b]0;window title\x07text", b"text"),
        (b"\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\", b"link"),
        (b"\x1bPq#0;2;0;0;0\x1b\\after dcs", b"after dcs"),
        (b"\x1b(Bcharset \x1b=keypad \x1b7save", b"charset keypad save"),
        (b"\x1b[?25lcursor\x1b[?25h \x1b[2K\x1b[1A", b"cursor "),
        (b"unfinished \x1b]0;title", b"unfinished "),
        (b"lone escape \x1b", b"lone escape "),
        ("ünïcödé ✔ €".encode(), "ünïcödé ✔ €".encode()),
    ],
)
def test_strip_ansi(raw, clean):
    assert clean == strip_ansi(raw)
