"""When `sauci serve` starts its web UI: after its "watching" line, not before
(issue 'Operations that tell the truth', item 6: ready within 0.3 s).

The UI's start is a thread of Django imports. Under one GIL, a thread started
before the line makes each of the main thread's writes on its way to the line
wait for it (about 5 ms a switch), and it imported waitress while the server
was still saying it was ready."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STARTER = """
import sys, threading
from sauci.cli import build_parser
from sauci.cli._context import settings_from
from sauci.cli._server import _web_ui
args = build_parser("serve").parse_args(["serve", "--data-dir", sys.argv[1], "--port", "0"])
starter = _web_ui(args, settings_from(args))
where, start, stop = starter(object())
print(sorted(t.name for t in threading.enumerate() if t.name == "sauci-ui"))
print("sauci.contrib.django.project" in sys.modules)
print(where)
stop()  # before start: nothing to wait for
"""


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` run in a new interpreter with ``tmp_path`` as its argument."""
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_the_web_starter_starts_nothing_and_imports_nothing_of_the_ui_until_asked(
    tmp_path: Path,
):
    done = _python(STARTER, tmp_path)
    threads, imported, where = done.stdout.splitlines()
    assert "[]" == threads, "the UI's thread runs before the server's line is printed"
    assert "False" == imported, "the UI's modules are imported before the server's line"
    assert "; results at http://127.0.0.1:0/" == where


RUN = """
import os, signal, sys, threading
from sauci.app.flags import policy_overrides
from sauci.app.serve import run_server
from sauci.cli import build_parser
from sauci.cli._context import open_cli_store, settings_from
args = build_parser("serve").parse_args(
    ["serve", "--data-dir", sys.argv[1], "--sandbox", "local", "--no-ui"]
)
settings = settings_from(args, **policy_overrides(args))
said = []

def web(store):
    def start():
        said.append("web started")
        # run_server's handlers are installed right after: stop it then.
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()

    return "; results at http://here/", start, lambda: said.append("web stopped")

run_server(open_cli_store(settings), settings, args, web=web, out=said.append)
for line in said:
    print(line.split(";")[0])
"""


def test_run_server_starts_the_web_front_end_after_its_watching_line(tmp_path: Path):
    done = _python(RUN, tmp_path)
    assert [
        "sauci serve: watching 0 repositories",
        "web started",
        "web stopped",
    ] == done.stdout.splitlines(), done.stderr


MISSING = """
import sys
sys.modules["django"] = None  # as if Django were not installed
from sauci.contrib.django.project import serve_ui
from sauci.core.config import Settings
from sauci.exceptions import ConfigError
try:
    serve_ui(Settings(data_dir=sys.argv[1]), port=0)
except ConfigError as exc:
    print(exc)
"""


def test_the_ui_without_django_says_what_to_install(tmp_path: Path):
    """The web starter no longer imports the UI before the line, so the UI's
    thread is where a missing Django is found, and named."""
    done = _python(MISSING, tmp_path)
    assert "the web UI needs django: pip install 'sauci[django]'" == done.stdout.strip()
