"""``manage.py sauci_serve`` and ``sauci_worker`` with a site's ``SAUCI`` settings, the
broker's system checks, and readyz's broker check: against a real Redis and real
worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

sys.path.insert(0, str(Path(__file__).parent.parent / "storage"))

from polling import wait_for
from redis_server import redis_server, redis_url  # noqa: F401

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.storage import open_store

pytest.importorskip("celery")

DEADLINE = 60.0  # seconds a wait gives up after; never a timing assert

SETTINGS_MODULE = """\
SECRET_KEY = "sauci-management-tests"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "sauci.contrib.django",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
SAUCI = {{
    "STORE": {store!r},
    "DATA_DIR": {data_dir!r},
    "BROKER": {broker!r},
    "WEBHOOK_SECRET": "unused",
    "ANALYTICS": False,
}}
"""


def make_repo(path: Path, pipeline: str) -> str:
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return str(path)


class Process:
    """A command in the background, its output in a file (no pipe to fill up)."""

    def __init__(self, argv: list[str], log: Path, cwd: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, start: str) -> str:
        def found() -> str | None:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"exited with {self.proc.returncode} before {start!r}:\n{self.output()}"
                )
            return next((ln for ln in self.output().splitlines() if ln.startswith(start)), None)

        return wait_for(found, repr(start))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not stop on signal {signum}:\n{self.output()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._out.close()


@pytest.fixture
def site(tmp_path: Path, redis_url: str) -> Iterator[dict[str, Any]]:  # noqa: F811
    """A Django site's settings module in tmp_path: an SQLite store, a data dir, the Redis broker."""
    store_url = f"sqlite:///{tmp_path / 'sauci.db'}"
    (tmp_path / "site_settings.py").write_text(
        SETTINGS_MODULE.format(store=store_url, data_dir=str(tmp_path / "data"), broker=redis_url)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "DJANGO_"))}
    env.update(PYTHONPATH=str(tmp_path), DJANGO_SETTINGS_MODULE="site_settings")
    store = open_store(store_url)
    started: list[Process] = []

    def start(name: str, *argv: str) -> Process:
        process = Process(list(argv), tmp_path / f"{name}.log", tmp_path, env)
        started.append(process)
        return process

    try:
        yield {"store": store, "store_url": store_url, "broker": redis_url, "start": start}
    finally:
        for process in started:
            process.close()
        store.close()


def fresh_heartbeat(data_dir: Path) -> None:
    (data_dir / "server.json").write_text(json.dumps({"heartbeat": time.time()}))


def passed_build(store: Any, build_id: int) -> Any:
    build = store.get_build(build_id)
    return build if build.status.done else None


PIPELINE = "steps:\n  hello:\n    run: echo hello from $SAUCI_BUILD_ID\n"
WORKER_FLAGS = ["--sandbox", "local", "--heartbeat-interval", "0.5", "--log-level", "warning"]


@pytest.mark.slow
def test_sauci_serve_sends_a_queued_build_to_a_sauci_worker_and_stops_on_sigterm(site, tmp_path):
    store = site["store"]
    repo = make_repo(tmp_path / "repo", PIPELINE)
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    serve = site["start"]("serve", sys.executable, "-m", "django", "sauci_serve")
    line = serve.wait_for_line("sauci_serve: watching")
    assert f"data in {tmp_path / 'data'}" in line
    assert f"builds go to workers through {site['broker']}" in line
    worker = site["start"](
        "worker",
        *[sys.executable, "-m", "sauci", "worker", "--broker", site["broker"]],
        *["--store", site["store_url"], "--data-dir", str(tmp_path / "worker")],
        *["--name", "plain", *WORKER_FLAGS],
    )

    build = wait_for(lambda: passed_build(store, build_id), "the build to end")
    assert (Status.PASSED, "plain") == (build.status, build.claimed_by), serve.output()
    assert f"hello from {build_id}\n" == store.read_log(build_id, "hello").decode()
    assert 0 == serve.stop(signal.SIGTERM), serve.output()
    assert "Traceback" not in serve.output()
    assert 0 == worker.stop(signal.SIGTERM), worker.output()


@pytest.mark.slow
def test_sauci_worker_runs_the_sites_builds_and_stops_on_sigterm(site, tmp_path):
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.server import ServerOptions

    store = site["store"]
    repo = make_repo(tmp_path / "repo", PIPELINE)
    worker = site["start"](
        "worker", sys.executable, "-m", "django", "sauci_worker", "--name", "site", *WORKER_FLAGS
    )
    line = worker.wait_for_line("sauci worker site:")
    assert f"broker {site['broker']}" in line
    server = build_server(
        store=store,
        settings=Settings(data_dir=tmp_path / "server", broker=site["broker"], sandbox="local"),
        options=ServerOptions(poll_interval=3600),
    )
    server.start()
    try:
        build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
        build = wait_for(lambda: passed_build(store, build_id), "the build to end")
    finally:
        server.stop(timeout=5)
    assert (Status.PASSED, "site") == (build.status, build.claimed_by), worker.output()
    assert 0 == worker.stop(signal.SIGTERM), worker.output()
    # The worker ran in the site's data directory, with the site's store.
    assert (tmp_path / "data" / "worker-site.lock").exists()
    assert [] == [w.name for w in store.list_workers()]  # a warm shutdown removes its record


def test_sauci_serve_with_a_broker_that_is_down_is_one_clear_error(settings, tmp_path):
    settings.SAUCI = {"STORE": "memory://", "DATA_DIR": str(tmp_path)}
    with pytest.raises(CommandError) as caught:
        call_command("sauci_serve", broker="redis://:secret@127.0.0.1:1/0", log_level="warning")
    assert 3 == caught.value.returncode
    assert str(caught.value).startswith("cannot reach the broker at redis://:***@127.0.0.1:1/0")


def test_sauci_worker_refuses_celery_options_it_decides_itself(settings, tmp_path):
    settings.SAUCI = {"STORE": "memory://", "DATA_DIR": str(tmp_path), "BROKER": "redis://x"}
    with pytest.raises(CommandError) as caught:
        call_command("sauci_worker", "-Q", "q1")
    assert (2, True) == (caught.value.returncode, "computed from --labels" in str(caught.value))


def test_sauci_worker_needs_a_broker(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    settings.SAUCI = {"STORE": "memory://", "DATA_DIR": str(tmp_path)}
    with pytest.raises(CommandError, match="needs a broker"):
        call_command("sauci_worker")


# -- the flags are sauci serve's and sauci worker's ----------------------------------------

DJANGO_OWN = {
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


def parsed(parser: Any, argv: list[str]) -> dict[str, Any]:
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if k not in DJANGO_OWN}


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("serve", []),
        (
            "serve",
            [
                *["--repo", "a", "--repo", "b", "--hook", "none", "--poll", "5"],
                *["--step-slots", "3", "--max-builds", "4", "--cancel-superseded"],
                *["--no-retry-interrupted", "--broker", "redis://h/0", "--lost-timeout", "9"],
                *["--attempts", "3", "--log-level", "debug", "--log-format", "json"],
            ],
        ),
        ("worker", []),
        (
            "worker",
            [
                *["--broker", "redis://h/0", "--labels", "a,b", "-c", "3", "-n", "w", "-l", "info"],
                *["--artifacts-dir", "/x", "--heartbeat-interval", "2", "--metrics-port", "9"],
                *["--sandbox", "local", "--log-level", "debug", "--log-format", "json"],
            ],
        ),
    ],
)
def test_each_flag_means_what_it_means_to_the_sauci_command(command, argv):
    from django.core.management import load_command_class

    from sauci.cli import build_parser

    django_parser = load_command_class("sauci.contrib.django", f"sauci_{command}").create_parser(
        "manage.py", f"sauci_{command}"
    )
    ours = parsed(django_parser, argv)
    theirs = vars(build_parser(command).parse_args([command, *argv]))
    assert ours == {key: theirs[key] for key in ours}


# -- SauCI's settings for the site -----------------------------------------------------------


def test_the_sites_directories_and_broker_make_sauci_settings(settings, tmp_path, monkeypatch):
    from sauci.contrib.django import conf

    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    monkeypatch.setenv("SAUCI_JOBS", "7")  # what SAUCI does not name comes from SAUCI_*
    settings.SAUCI = {
        "STORE": "sqlite:////srv/s.db",
        "DATA_DIR": str(tmp_path / "d"),
        "ARTIFACTS_DIR": str(tmp_path / "a"),
        "BROKER": "redis://b:6379/0",
    }
    made = conf.sauci_settings()
    assert (tmp_path / "d", tmp_path / "a") == (made.data_dir, made.artifacts_dir)
    assert ("sqlite:////srv/s.db", "redis://b:6379/0", 7) == (made.store, made.broker, made.jobs)
    assert "redis://flag/1" == conf.sauci_settings(broker="redis://flag/1").broker


def test_the_sites_sandbox_policy_makes_sauci_settings_and_flags_win(
    settings, tmp_path, monkeypatch
):
    from sauci.contrib.django import conf

    monkeypatch.setenv("SAUCI_SANDBOX", "local")  # SAUCI, when it says, is over the environment
    settings.SAUCI = {
        "STORE": "memory://",
        "DATA_DIR": str(tmp_path),
        "SANDBOX": "namespace",
        "ALLOWED_SANDBOXES": ["docker"],
        "SECRETS_FILE": str(tmp_path / "secrets.toml"),
    }
    made = conf.sauci_settings()
    assert ("namespace", ("docker",), tmp_path / "secrets.toml") == (
        made.sandbox,
        made.allowed_sandboxes,
        made.secrets_file,
    )
    assert "docker" == conf.sauci_settings(sandbox="docker").sandbox
    settings.SAUCI = {"STORE": "memory://", "DATA_DIR": str(tmp_path)}
    assert "local" == conf.sauci_settings().sandbox


def test_a_bad_sandbox_policy_in_sauci_is_a_system_check_error(settings):
    from sauci.contrib.django import conf

    settings.SAUCI = {"ALLOWED_SANDBOXES": "docker"}  # a string, not a list
    assert ["sauci.E003"] == [p.id for p in conf.problems(settings.SAUCI)]


def test_without_broker_the_environment_decides_and_sauci_toml_does_not(
    settings, tmp_path, monkeypatch
):
    from sauci.contrib.django import conf

    (tmp_path / "sauci.toml").write_text('[sauci]\nbroker = "redis://toml/0"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    settings.SAUCI = {"STORE": "memory://", "DATA_DIR": str(tmp_path)}
    assert (None, "") == (conf.broker(), conf.sauci_settings().broker)
    monkeypatch.setenv("SAUCI_BROKER", "redis://env/0")
    assert ("redis://env/0", "redis://env/0") == (conf.broker(), conf.sauci_settings().broker)


# -- system checks ---------------------------------------------------------------------------


def messages(**sauci: Any) -> dict[str, str]:
    with override_settings(SAUCI={"STORE": "memory://", **sauci}):
        return {m.id: m.msg for m in checks.run_checks() if m.id.startswith("sauci.")}


def test_a_broker_that_is_not_a_string_is_a_bad_value():
    found = messages(BROKER=6379)
    assert "SAUCI['BROKER'] is 6379" == found["sauci.E003"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("rdis://broker:6379/0", "unknown scheme 'rdis'; did you mean 'redis'?"),
        ("redis://broker:637900/0", "Port out of range"),
        ("broker:6379", "is not a URL"),
    ],
)
def test_a_malformed_broker_url_is_an_error(url, says, monkeypatch):
    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    found = messages(BROKER=url)
    assert says in found["sauci.E004"]
    assert "sauci.W004" not in found


def test_a_broker_in_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("SAUCI_BROKER", "rdis://broker")
    assert messages()["sauci.E004"].startswith("SAUCI_BROKER: broker URL rdis://broker")


def test_a_broker_without_celery_installed_is_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # import celery fails
    found = messages(BROKER="redis://broker:6379/0")
    assert "Celery is not installed" in found["sauci.W004"]
    assert "sauci.E004" not in found


def test_a_good_broker_or_none_is_no_news(monkeypatch):
    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    for sauci in ({"BROKER": "redis://:pw@broker:6379/0"}, {}):
        found = messages(**sauci)
        assert set() == {"sauci.E004", "sauci.W004"} & set(found)


# -- readyz checks the broker ----------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_reports_the_broker_down_and_up(
    client,
    settings,
    tmp_path,
    redis_server,  # noqa: F811
    redis_url,  # noqa: F811
):
    from sauci.storage.memory import MemoryStore

    settings.SAUCI = {"STORE": MemoryStore(), "DATA_DIR": str(tmp_path), "BROKER": redis_url}
    fresh_heartbeat(tmp_path)
    up = client.get(reverse("sauci:readyz"))
    assert (200, "ok") == (up.status_code, up.json()["checks"].get("broker")), up.content
    redis_server.stop()
    try:
        down = client.get(reverse("sauci:readyz"))
        assert 503 == down.status_code
        assert {"store": "ok", "broker": "broker unreachable (OperationalError)"}.items() <= (
            down.json()["checks"].items()
        )
        assert str(redis_server.port) not in down.content.decode()  # no address to the public
    finally:
        redis_server.start()
    fresh_heartbeat(tmp_path)
    assert 200 == client.get(reverse("sauci:readyz")).status_code


@pytest.mark.django_db
def test_readyz_has_no_broker_check_without_a_broker(client, settings, tmp_path, monkeypatch):
    from sauci.storage.memory import MemoryStore

    monkeypatch.delenv("SAUCI_BROKER", raising=False)
    settings.SAUCI = {"STORE": MemoryStore(), "DATA_DIR": str(tmp_path)}
    fresh_heartbeat(tmp_path)
    response = client.get(reverse("sauci:readyz"))
    assert 200 == response.status_code
    assert ["queue", "scheduler", "store"] == sorted(response.json()["checks"])


def test_ready_check_names_are_the_health_modules():
    from sauci.contrib.django.conf import READY_CHECK_NAMES
    from sauci.monitoring.health import ALL_CHECKS

    assert ALL_CHECKS == READY_CHECK_NAMES


def test_sauci_serve_s_own_pages_check_its_broker(tmp_path):
    from sauci.contrib.django.project.serve import project_settings
    from sauci.core.config import Settings

    with_broker = Settings(data_dir=tmp_path, broker="redis://b:6379/0")
    assert "redis://b:6379/0" == project_settings(with_broker)["SAUCI"]["BROKER"]
    assert None is project_settings(Settings(data_dir=tmp_path))["SAUCI"]["BROKER"]
