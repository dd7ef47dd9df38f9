"""``sauci worker`` / ``sauci workers`` and ``serve --broker`` at the edges:
clear errors (no tracebacks) for bad or unreachable brokers, the listing,
and no Celery import unless a broker is used."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from sauci.cli import main
from sauci.core.config import Settings
from sauci.core.models import Worker
from sauci.exceptions import ConfigError, SauCIError


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'sauci.db'}"


def test_a_broker_url_with_an_unknown_scheme_is_a_usage_error(capsys, tmp_path, store_url):
    code, out = run(capsys, "worker", "--broker", "rdis://localhost", "--store", store_url)
    assert 2 == code
    assert "unknown scheme 'rdis'; did you mean 'redis'?" in out
    assert "Traceback" not in out


def test_a_broker_that_is_down_is_one_clear_line(capsys, tmp_path, store_url):
    argv = ["worker", "--broker", "redis://:secret@127.0.0.1:1/0", "--store", store_url]
    code, out = run(capsys, *argv, "--data-dir", str(tmp_path))
    assert 3 == code
    assert "cannot reach the broker at redis://:***@127.0.0.1:1/0" in out
    assert "secret" not in out and "Traceback" not in out


def test_a_worker_needs_a_broker(capsys, tmp_path, store_url, monkeypatch):
    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    code, out = run(capsys, "worker", "--store", store_url, "--data-dir", str(tmp_path))
    assert (2, True) == (code, "needs a broker" in out)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-Q", "q1"], "computed from --labels"),
        (["--pool", "prefork"], "runs builds on threads"),
        (["--labels", "a,b,c,d,e,f,g,h,i"], "at most 8"),
    ],
)
def test_celery_options_that_do_not_apply_are_explained(
    capsys, tmp_path, store_url, flags, message
):
    argv = ["worker", "--broker", "redis://127.0.0.1:1/0", "--store", store_url, *flags]
    code, out = run(capsys, *argv, "--data-dir", str(tmp_path))
    assert 2 == code
    assert message in out


def test_workers_lists_labels_slots_capacity_and_heartbeats(capsys, tmp_path, store_url):
    from sauci.storage import open_store

    store = open_store(store_url)
    now = time.time()
    store.save_worker(
        Worker(
            name="w1", host="h1", labels=("linux",), slots=2, running=(7,), heartbeat_at=now,
            cpus=2, memory=4 * 1024**3,
        )
    )  # fmt: skip
    store.save_worker(Worker(name="w2", host="h2", slots=1, heartbeat_at=now - 3600))
    store.close()
    code, out = run(capsys, "workers", "--store", store_url, "--color", "never")
    assert 0 == code
    lines = out.splitlines()
    assert ["w1", "h1", "linux", "1/2", "2", "CPUs,", "4.0", "GiB", "#7", "online"] == (
        lines[1].split()[:10]
    )
    assert ["w2", "h2", "-", "0/1", "-", "-", "lost"] == lines[2].split()[:7]


def test_serve_with_a_broker_that_is_down_fails_at_start(tmp_path):
    from sauci.app.server import build_server
    from sauci.storage.memory import MemoryStore

    settings = Settings(data_dir=tmp_path, broker="redis://127.0.0.1:1/0", sandbox="local")
    server = build_server(store=MemoryStore(), settings=settings)
    with pytest.raises(
        SauCIError, match=re.escape("cannot reach the broker at redis://127.0.0.1:1/0")
    ):
        server.start()


def test_a_bad_broker_setting_is_a_config_error(tmp_path):
    from sauci.app.server import build_server
    from sauci.storage.memory import MemoryStore

    with pytest.raises(ConfigError, match="not a URL"):
        build_server(
            store=MemoryStore(),
            settings=Settings(data_dir=tmp_path, broker="localhost", sandbox="local"),
        )


def test_celery_is_imported_only_with_a_broker():
    code = (
        "import sys, sauci, sauci.cli, sauci.cli._worker, sauci.core.server, sauci.distributed\n"
        "print('celery' in sys.modules, 'kombu' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False False" == out.stdout.strip()


def test_the_sauci_command_knows_worker_workers_and_serve_broker():
    from sauci.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["worker", "--labels", "gpu", "--slots", "3"])
    assert ("gpu", 3) == (args.labels, args.slots)
    assert "workers" == parser.parse_args(["workers"]).command
    assert "redis://x" == parser.parse_args(["serve", "--broker", "redis://x"]).broker


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:secret@127.0.0.1:abc/0", "Port could not be cast to integer"),
        ("redis://:secret@127.0.0.1:99999/0", "Port out of range"),
        ("redis://[::1/0", "Invalid IPv6 URL"),
        ("redis://:secret@127.0.0.1:1/x", "Database is int"),
    ],
)
def test_a_malformed_broker_url_is_one_line_not_a_traceback(
    capsys, tmp_path, store_url, url, message
):
    code, out = run(capsys, "worker", "--broker", url, "--store", store_url)
    assert (2, True) == (code, message in out), out
    assert "Traceback" not in out and "secret" not in out
