"""Rerun failed keeps what it needs: the steps a failed step needs run again
(their workspace state is not kept), the steps outside that closure that passed
are reused. Tested on a real install->test pipeline (a venv, pip, pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.dag import rerun_closure
from sauci.core.models import Pipeline, Status, Step, StepRun
from sauci.core.rerun import reusable_steps
from sauci.core.server import Server, ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]


def _pipeline(*steps: tuple[str, tuple[str, ...] | None]) -> Pipeline:
    return Pipeline(steps=[Step(name=n, run="true", needs=needs) for n, needs in steps])


# -- the closure ------------------------------------------------------------


def test_closure_is_the_failed_step_and_its_needs_ancestors():
    pipeline = _pipeline(
        ("install", ()),
        ("build", ("install",)),
        ("test", ("build",)),
        ("docs", ("install",)),
        ("lint", ()),
    )
    assert {"install", "build", "test"} == rerun_closure(pipeline, ["test"])
    assert {"install", "docs"} == rerun_closure(pipeline, ["docs"])
    assert {"lint"} == rerun_closure(pipeline, ["lint"])
    assert set() == rerun_closure(pipeline, [])


def test_closure_follows_the_file_order_default():
    # needs None: the step before it in the file
    pipeline = _pipeline(("a", None), ("b", None), ("c", None), ("d", ()))
    assert {"a", "b", "c"} == rerun_closure(pipeline, ["c"])


def test_closure_of_a_diamond_and_of_unknown_names():
    pipeline = _pipeline(("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")))
    assert {"a", "b", "c", "d"} == rerun_closure(pipeline, ["d", "renamed-since"])
    assert set() == rerun_closure(pipeline, ["renamed-since"])


def test_closure_of_a_long_chain_needs_no_recursion():
    names = [f"s{i}" for i in range(5000)]
    pipeline = Pipeline(
        steps=[
            Step(name=n, run="true", needs=(names[i - 1],) if i else ())
            for i, n in enumerate(names)
        ]
    )
    assert set(names) == rerun_closure(pipeline, [names[-1]])


def test_reusable_steps_keep_only_passed_steps_outside_the_closure():
    pipeline = _pipeline(("install", ()), ("test", ("install",)), ("lint", ()), ("new", ()))
    earlier = [
        StepRun(build_id=1, name="install", position=0, status=Status.PASSED),
        StepRun(build_id=1, name="test", position=1, status=Status.FAILED),
        StepRun(build_id=1, name="lint", position=2, status=Status.PASSED),
    ]
    assert ["lint"] == sorted(reusable_steps(pipeline, earlier))


def test_a_skipped_dependent_brings_its_needs_back():
    pipeline = _pipeline(("install", ()), ("test", ("install",)), ("report", ("test",)))
    earlier = [
        StepRun(build_id=1, name="install", position=0, status=Status.PASSED),
        StepRun(build_id=1, name="test", position=1, status=Status.PASSED),
        StepRun(build_id=1, name="report", position=2, status=Status.SKIPPED),
    ]
    assert {} == reusable_steps(pipeline, earlier)


# -- a real install -> test pipeline ---------------------------------------

BACKEND = '''"""A build backend in a few lines: the test needs no setuptools, wheel or network."""

import base64
import hashlib
import os
import zipfile

DIST = "demo_pkg-1.0"


def _hash(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join("src", "demo_pkg", "__init__.py"), "rb") as f:
        code = f.read()
    files = {
        "demo_pkg/__init__.py": code,
        DIST + ".dist-info/METADATA": b"Metadata-Version: 2.1\\nName: demo-pkg\\nVersion: 1.0\\n",
        DIST + ".dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: demo\\n"
        b"Root-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = [f"{name},sha256={_hash(data)},{len(data)}" for name, data in files.items()]
    record.append(DIST + ".dist-info/RECORD,,")
    wheel = DIST + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(DIST + ".dist-info/RECORD", "\\n".join(record) + "\\n")
    return wheel
'''

TEST = """import pathlib

import demo_pkg


def test_value():
    # fails on the first build only: the flag lives outside the repository
    flag = pathlib.Path("..", "flaky-flag")
    if not flag.exists():
        flag.write_text("flipped")
        raise AssertionError("first build fails")
    assert demo_pkg.VALUE == 42
    assert ".venv" in demo_pkg.__file__  # the installed copy, not the source tree
"""

PIPELINE = """\
steps:
  install:
    run: >-
      echo ran >> ../ran-install &&
      python -m venv --system-site-packages .venv &&
      .venv/bin/pip install -q --no-index --disable-pip-version-check ./pkg
  test:
    needs: [install]
    run: .venv/bin/python -m pytest -q -p no:cacheprovider tests
  lint:
    needs: []
    run: echo ran >> ../ran-lint
"""


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def _origin(tmp: Path) -> tuple[Path, Path]:
    bare = tmp / "origin.git"
    _git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp / "work"
    _git(tmp, "clone", "-q", str(bare), str(work))
    _git(work, "checkout", "-q", "-b", "main")
    (work / "pkg" / "src" / "demo_pkg").mkdir(parents=True)
    (work / "pkg" / "src" / "demo_pkg" / "__init__.py").write_text("VALUE = 42\n")
    (work / "pkg" / "demo_backend.py").write_text(BACKEND)
    (work / "pkg" / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "demo_backend"\nbackend-path = ["."]\n'
    )
    (work / "tests").mkdir()
    (work / "tests" / "test_value.py").write_text(TEST)
    (work / ".sauci.yml").write_text(PIPELINE)
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "first")
    return bare, work


def _server(settings: Settings, repo: Path) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[str(repo)],
        options=ServerOptions(),
    )
    server.start()
    return server


@pytest.mark.slow
def test_rerun_failed_of_install_then_test_passes_and_reuses_lint(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    bare, work = _origin(tmp_path)
    server = _server(settings, bare)
    ws_parent = settings.workspaces_dir
    try:
        _git(work, "push", "-q", "origin", "main")
        first = wait_for(lambda: _done(server, 1), timeout=120)[0]
        steps = {s.name: s.status for s in server.store.list_steps(first.id)}
        assert (first.status, steps) == (
            Status.FAILED,
            {"install": Status.PASSED, "test": Status.FAILED, "lint": Status.PASSED},
        )
        # `sauci rerun --failed`, the command a user types, beside the running server
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "sauci",
                "rerun",
                "--failed",
                str(first.id),
                "--data-dir",
                str(settings.data_dir),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == out.returncode, out.stderr
        again = wait_for(lambda: _done(server, 2), timeout=120)
        rerun = max(again, key=lambda b: b.id)
    finally:
        server.stop()
    steps2 = {s.name: s for s in server.store.list_steps(rerun.id)}
    assert Status.PASSED == rerun.status, Path(steps2["test"].log_path).read_text()
    assert (rerun.event, rerun.reuse_from) == ("rerun", first.id)
    # install ran again (the test needs its .venv); lint is outside the closure: reused
    assert "ran\nran\n" == (ws_parent / "ran-install").read_text()
    assert "ran\n" == (ws_parent / "ran-lint").read_text()
    assert f"reused from build {first.id}" == steps2["lint"].reason
    assert steps2["install"].reason is None
    assert {Status.PASSED} == {s.status for s in steps2.values()}


def _done(server: Server, n: int):
    builds = server.store.list_builds(limit=10)
    return builds if len(builds) >= n and all(b.status.done for b in builds) else None
