"""Which renderer SauCI's console log uses: structlog for a person at a terminal
and for JSON; the stdlib formatter of the same key=value line where stderr is a
pipe or a file (a service's log), so that a server there need not import
structlog."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

CODE = """
import sys
from sauci._logging import configure, get_logger
configure(level={level!r}, fmt={fmt!r})
get_logger("sauci.test").info("server_started", name="serve:a b", repos=2)
print("structlog" in sys.modules, flush=True)
"""


def _run(level: str, fmt: str, *, tty: bool) -> tuple[str, str]:
    """(stdout, stderr) of a process that logs one event; stderr a pty when ``tty``."""
    return _run_code(CODE.format(level=level, fmt=fmt), tty=tty)


def _run_code(code: str, *, tty: bool) -> tuple[str, str]:
    """(stdout, stderr) of a process that runs ``code``; stderr a pty when ``tty``."""
    if not tty:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout, done.stderr
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            check=True,
            timeout=60,
        )
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return done.stdout, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)


def test_a_servers_console_log_to_a_pipe_is_the_plain_line_without_structlog():
    out, err = _run("info", "console", tty=False)
    assert "False" == out.strip()
    line = err.strip()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \[info +\] server_started "
        r"name='serve:a b' repos=2",
        line,
    ), line


def test_a_terminal_gets_structlogs_console_renderer():
    out, err = _run("info", "console", tty=True)
    assert "True" == out.strip()
    assert "server_started" in err
    assert "repos" in err


def test_json_is_structlogs_wherever_it_goes():
    out, err = _run("info", "json", tty=False)
    assert "True" == out.strip()
    event = json.loads(err.strip())
    assert ("server_started", 2, "info") == (event["event"], event["repos"], event["level"])


HOSTILE = """
from sauci._logging import configure, get_logger
configure(level="info", fmt="console")
log = get_logger("sauci.test")
log.warning("artifact_refused", path="x\\x1b]52;c;cHduZWQ=\\x07\\u202egpj.exe\\n[error] forged")
try:
    raise ValueError("in a traceback: \\x1b]0;title\\x07")
except ValueError:
    log.exception("step_failed", step="s")
"""


def test_a_pushed_name_in_the_console_log_drives_no_terminal():
    """A file name in a log event is the pusher's: an escape in it (OSC 52 sets
    the clipboard of whoever watches `sauci serve`), a bidi override or a
    newline (a forged line) is shown escaped, to a pipe and to a terminal."""
    for tty in (False, True):
        if tty:
            _, err = _run_code(HOSTILE, tty=True)
        else:
            done = subprocess.run(
                [sys.executable, "-c", HOSTILE], capture_output=True, text=True, timeout=60
            )
            err = done.stderr
        assert "\x1b]" not in err and "\u202e" not in err, (tty, err)
        assert "\n[error] forged" not in err, (tty, err)
        assert "52;c;cHduZWQ=" in err and "in a traceback" in err, (tty, err)
