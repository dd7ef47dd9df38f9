"""``sauci demo``: make a sample repository, commit to it, build it, show the results."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

__all__ = ["cmd_demo", "make_demo_repo"]

_PIPELINE = """\
# A sample pipeline: a DAG, a matrix, test reports, an artifact and an allowed failure.
env:
  GREETING: hello from SauCI
steps:
  lint:
    run: |
      echo "$GREETING"
      python3 -m py_compile calc.py && echo "calc.py compiles"
    needs: []
  test:
    matrix:
      mode: [fast, thorough]
    run:
      - python3 test_calc.py "${{ matrix.mode }}"
    needs: [lint]
    junit: reports/*.xml
  package:
    run: |
      mkdir -p dist && tar czf dist/calc.tar.gz calc.py
      printf '\\033[32mpackaged\\033[0m dist/calc.tar.gz\\n'
    needs: [test]
    artifacts: dist/*.tar.gz
  experimental:
    run: echo "this check is allowed to fail"; exit 1
    needs: []
    allow_failure: true
"""

_CALC = """\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b
"""

_TEST = '''\
"""A tiny test runner that writes a JUnit report, so the demo needs no packages."""
import os
import sys
import time
from xml.sax.saxutils import quoteattr

from calc import add, mul

mode = sys.argv[1] if len(sys.argv) > 1 else "fast"
cases = [("test_add", lambda: add(2, 3) == 5), ("test_mul", lambda: mul(3, 4) == 12)]
if mode == "thorough":
    cases.append(("test_big", lambda: add(10**20, 1) == 10**20 + 1))
rows, failures = [], 0
for name, check in cases:
    start = time.perf_counter()
    ok = check()
    took = time.perf_counter() - start
    print(("PASS" if ok else "FAIL"), name)
    failures += not ok
    body = "" if ok else '<failure message="assertion failed">check returned False</failure>'
    rows.append(f"<testcase classname={quoteattr('calc.' + mode)} name={quoteattr(name)} time=\\"{took:.6f}\\">{body}</testcase>")
os.makedirs("reports", exist_ok=True)
with open(f"reports/junit-{mode}.xml", "w") as fh:
    fh.write(f"<testsuite name=\\"calc\\" tests=\\"{len(rows)}\\" failures=\\"{failures}\\">" + "".join(rows) + "</testsuite>")
sys.exit(1 if failures else 0)
'''


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=SauCI Demo", "-c", "user.email=demo@sauci.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def make_demo_repo(path: Path) -> Path:
    """A git repository with a small Python project and its .sauci.yml, committed."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ".sauci.yml").write_text(_PIPELINE, encoding="utf-8")
    (path / "calc.py").write_text(_CALC, encoding="utf-8")
    (path / "test_calc.py").write_text(_TEST, encoding="utf-8")
    (path / ".gitignore").write_text("reports/\ndist/\n__pycache__/\n", encoding="utf-8")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "Add calc with tests")
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    from sauci.cli._local import cmd_run

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sauci-demo-"))
    repo = make_demo_repo(base / "calc")
    print(f"sample repository: {repo}\n", flush=True)
    run_args = argparse.Namespace(
        **{
            **vars(args),
            "path": str(repo),
            "dirty": False,
            "commit": None,
            "jobs": None,
            "fail_fast": None,
            "quiet": False,
            "file": None,
            "event": "push",
            "keep_workspace": False,
        }
    )
    if args.serve:
        _check_ui_packages()
    code = cmd_run(run_args)
    if not args.serve:
        print("\nnext: sauci builds · sauci show <build> · sauci logs <build> <step>")
        print("       sauci demo --serve (with pip install -e '.[django]'): the same in a web page")
        return code
    _serve_results(args)
    return code


def _check_ui_packages() -> None:
    """Fail before the build, not after it, when the web UI cannot start."""
    from importlib.util import find_spec

    from sauci.exceptions import ConfigError

    missing = [name for name in ("django", "waitress", "whitenoise") if find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"sauci demo --serve needs the web UI's packages ({', '.join(missing)} missing): "
            "pip install -e '.[django]'"
        )


def _serve_results(args: argparse.Namespace) -> None:
    """Serve the web UI over the demo's store until Ctrl-C (or SIGTERM)."""
    import signal
    import threading

    from sauci.cli._context import open_cli_store, settings_from
    from sauci.contrib.django.project import serve_ui

    settings = settings_from(args)
    store = open_cli_store(settings)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        handle = serve_ui(settings, host=args.host, port=args.port, store=store)
        latest = store.list_builds(limit=1)
        page = f"{handle.url}builds/{latest[0].id}/" if latest else handle.url
        print(f"\nthe build's page: {page} · Ctrl-C stops", flush=True)
        while not stop.wait(0.5):
            pass
        handle.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
