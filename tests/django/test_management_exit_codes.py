"""``manage.py sauci_serve`` and ``sauci_worker`` exit as ``sauci`` does: 2 for any
user or configuration error, 3 when SauCI itself cannot work (a store or broker
down), from the one table ``sauci.exceptions.EXIT_CODES`` (issue 'Real projects,
real results', item 6). Each case runs the real command in a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sauci

SETTINGS_MODULE = """\
SECRET_KEY = "sauci-exit-code-tests"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "sauci.contrib.django",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
SAUCI = {{"STORE": {store!r}, "DATA_DIR": {data_dir!r}, "ANALYTICS": False{extra}}}
"""


def manage(tmp_path: Path, *argv: str, store: str = "", extra: str = "") -> tuple[int, str]:
    """Run ``python -m django <argv>`` with a site whose SAUCI setting has ``store``."""
    store = store or f"sqlite:///{tmp_path / 'sauci.db'}"
    (tmp_path / "exit_site.py").write_text(
        SETTINGS_MODULE.format(store=store, data_dir=str(tmp_path / "data"), extra=extra)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "DJANGO_"))}
    source_root = str(Path(sauci.__file__).resolve().parent.parent)  # this checkout's sauci
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), source_root]))
    env.update(DJANGO_SETTINGS_MODULE="exit_site")
    done = subprocess.run(
        [sys.executable, "-m", "django", *argv, "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out  # a known error is one line
    return done.returncode, out


def test_an_unknown_option_exits_2(tmp_path):
    code, out = manage(tmp_path, "sauci_serve", "--no-such-option")
    assert (2, True) == (code, "--no-such-option" in out), out


def test_a_bad_flag_value_exits_2(tmp_path):
    code, out = manage(tmp_path, "sauci_serve", "--max-builds", "0")
    assert (2, True) == (code, "--max-builds" in out), out


def test_a_repository_that_does_not_exist_exits_2(tmp_path):
    code, out = manage(tmp_path, "sauci_serve", "--repo", str(tmp_path / "nowhere"))
    assert (2, True) == (code, "does not exist" in out), out


def test_a_directory_that_is_not_a_git_repository_exits_2(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out = manage(tmp_path, "sauci_serve", "--repo", str(plain), "--sandbox", "local")
    assert (2, True) == (code, "not a git repository" in out), out


def test_an_unknown_store_scheme_exits_2(tmp_path):
    code, out = manage(tmp_path, "sauci_serve", store="memry://")
    assert (2, True) == (code, "did you mean memory://" in out), out


def test_a_worker_without_a_broker_exits_2(tmp_path):
    pytest.importorskip("celery")
    code, out = manage(tmp_path, "sauci_worker")
    assert (2, True) == (code, "needs a broker" in out), out


def test_a_broker_that_is_down_exits_3(tmp_path):
    pytest.importorskip("celery")
    code, out = manage(tmp_path, "sauci_serve", extra=', "BROKER": "redis://127.0.0.1:1/0"')
    assert (3, True) == (code, "cannot reach the broker" in out), out


def test_a_store_that_is_down_exits_3(tmp_path):
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    code, out = manage(tmp_path, "sauci_serve", store="postgresql://u@127.0.0.1:1/x")
    assert (3, True) == (code, "Connection refused" in out), out
