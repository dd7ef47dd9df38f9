"""The app's monitoring: /metrics, /healthz, /readyz, the analytics middleware,
the usage page and the workers on the overview."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from django.core import checks
from django.test import override_settings
from django.urls import reverse

sys.path.insert(0, str(Path(__file__).parent.parent / "storage"))
sys.path.insert(0, str(Path(__file__).parent.parent / "monitoring"))

from monitoring_helpers import run_builds, value
from redis_server import redis_server, redis_url  # noqa: F401

from sauci.core.models import BuildRequest, Status, Worker

pytest.importorskip("prometheus_client")

MIDDLEWARE = "sauci.contrib.django.middleware.AnalyticsMiddleware"
TOKEN = "scrape-me"


@pytest.fixture
def monitored(settings, store, tmp_path):
    """The app over a MemoryStore with a data dir of its own and the analytics middleware."""
    settings.SAUCI = {
        "STORE": store,
        "DATA_DIR": str(tmp_path / "data"),
        "METRICS_TOKEN": TOKEN,
        "ANALYTICS": True,  # opt-in
    }
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    return store


def fresh_heartbeat(data_dir: Path, age: float = 0.0) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "server.json").write_text(json.dumps({"heartbeat": time.time() - age}))


def recorded(store):
    """Flush the app's analytics and read back what the local sink recorded."""
    from sauci.contrib.django import conf
    from sauci.monitoring.analytics import read_events

    handle = conf.monitoring()
    handle.analytics.close(timeout=10)
    return handle, read_events(store)


# -- /metrics --------------------------------------------------------------------------


@pytest.mark.django_db
class TestMetrics:
    def test_counters_and_histograms_after_builds(self, client, monitored, tmp_path):
        from sauci.contrib.django import conf

        conf.monitoring()  # subscribed before the builds run
        run_builds(monitored, tmp_path)
        monitored.create_build(BuildRequest(repo="/srv/app.git", event="push"))
        response = client.get(reverse("sauci:metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert 200 == response.status_code
        assert response["Content-Type"].startswith("text/plain")
        text = response.content.decode()
        assert 3 == value(text, "sauci_builds_total", repo="/srv/app.git", status="passed")
        assert 1 == value(text, "sauci_builds_total", repo="/srv/app.git", status="failed")
        assert 6 == value(text, "sauci_step_duration_seconds_count")
        assert 1 == value(text, "sauci_steps_ended_total", reason="timeout")
        assert 1 == value(text, "sauci_queue_depth")

    def test_anonymous_without_token_is_asked_for_one(self, client, monitored):
        response = client.get(reverse("sauci:metrics"))
        assert 401 == response.status_code
        assert response["WWW-Authenticate"].startswith("Bearer")
        wrong = client.get(reverse("sauci:metrics"), HTTP_AUTHORIZATION="Bearer nope")
        assert 401 == wrong.status_code

    def test_token_from_the_environment(self, client, settings, store, monkeypatch):
        settings.SAUCI = {"STORE": store}
        monkeypatch.setenv("SAUCI_METRICS_TOKEN", "from-env")
        ok = client.get(reverse("sauci:metrics"), HTTP_AUTHORIZATION="Bearer from-env")
        assert 200 == ok.status_code

    def test_viewers_may_read_others_may_not(
        self, client, monitored, viewer_user, django_user_model
    ):
        client.force_login(viewer_user)
        assert 200 == client.get(reverse("sauci:metrics")).status_code
        client.force_login(django_user_model.objects.create_user("nobody"))
        assert 403 == client.get(reverse("sauci:metrics")).status_code

    def test_switched_off(self, client, settings, store):
        settings.SAUCI = {"STORE": store, "METRICS": False, "PUBLIC": True}
        assert 404 == client.get(reverse("sauci:metrics")).status_code

    def test_without_prometheus_client_it_answers_501_with_the_fix(
        self, client, monitored, monkeypatch
    ):
        monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
        response = client.get(reverse("sauci:metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert 501 == response.status_code
        assert b"pip install 'sauci[metrics]'" in response.content
        assert b"Traceback" not in response.content


# -- health ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestHealth:
    def test_healthz_is_200_for_anyone(self, client, monitored):
        response = client.get(reverse("sauci:healthz"))
        assert 200 == response.status_code
        assert {"alive": True} == response.json()

    def test_readyz_is_200_with_a_fresh_heartbeat(self, client, monitored, tmp_path):
        fresh_heartbeat(tmp_path / "data")
        response = client.get(reverse("sauci:readyz"))
        assert 200 == response.status_code, response.content
        assert {"store": "ok", "scheduler": "ok", "queue": "ok"} == response.json()["checks"]

    def test_readyz_is_503_when_the_heartbeat_is_stale(self, client, monitored, tmp_path):
        fresh_heartbeat(tmp_path / "data", age=300)
        response = client.get(reverse("sauci:readyz"))
        assert 503 == response.status_code
        body = response.json()
        assert body["ready"] is False
        assert "heartbeat is 300 s old" in body["checks"]["scheduler"]

    def test_ready_checks_setting_limits_what_is_checked(self, client, settings, store):
        settings.SAUCI = {"STORE": store, "READY_CHECKS": ["store"]}
        response = client.get(reverse("sauci:readyz"))
        assert 200 == response.status_code
        assert {"store": "ok"} == response.json()["checks"]

    def test_readyz_follows_a_real_store_going_down_and_up(
        self,
        client,
        settings,
        tmp_path,
        redis_server,  # noqa: F811
        redis_url,  # noqa: F811
    ):
        from sauci.storage import open_store

        store = open_store(redis_url)
        settings.SAUCI = {"STORE": store, "DATA_DIR": str(tmp_path)}
        fresh_heartbeat(tmp_path)
        try:
            assert 200 == client.get(reverse("sauci:readyz")).status_code
            redis_server.stop()
            try:
                down = client.get(reverse("sauci:readyz"))
                assert 503 == down.status_code
                assert down.json()["checks"]["store"].startswith("store unreachable")
            finally:
                redis_server.start()
            fresh_heartbeat(tmp_path)
            assert 200 == client.get(reverse("sauci:readyz")).status_code
        finally:
            store.close()


# -- analytics middleware and the usage page -------------------------------------------------


def make_finished(store, status=Status.FAILED):
    build = store.create_build(
        BuildRequest(repo="/srv/app.git", ref="refs/heads/main", sha="a" * 40, event="push")
    )
    return store.update_build(
        build.id, status=status, started_at=time.time(), finished_at=time.time()
    )


@pytest.mark.django_db
class TestAnalyticsMiddleware:
    def test_page_views_are_recorded_with_the_user_hashed(self, client, monitored, viewer_user):
        client.force_login(viewer_user)
        assert 200 == client.get(reverse("sauci:overview")).status_code
        # A live refresh of the same page is not a page view.
        client.get(reverse("sauci:overview"), HTTP_X_REQUESTED_WITH="fetch")
        handle, events = recorded(monitored)
        views = [e for e in events if e.name == "page_view"]
        assert 1 == len(views)
        assert "overview" == views[0].properties["page"]
        assert handle.analytics.user_id("viv") == views[0].distinct_id
        assert "viv" not in views[0].distinct_id

    def test_rerun_and_cancel_are_recorded_as_actions(self, client, monitored, admin):
        client.force_login(admin)
        build = make_finished(monitored)
        assert (
            302
            == client.post(
                reverse("sauci:rerun", args=[build.id]), {"failed_only": "1"}
            ).status_code
        )
        queued = monitored.create_build(
            BuildRequest(repo="/srv/app.git", sha="b" * 40, event="push")
        )
        assert 302 == client.post(reverse("sauci:cancel", args=[queued.id])).status_code
        handle, events = recorded(monitored)
        actions = [e for e in events if e.name == "ui_action"]
        assert ["rerun", "cancel"] == [e.properties["action"] for e in actions]
        assert actions[0].properties["failed_only"] is True
        assert {handle.analytics.user_id("root")} == {e.distinct_id for e in actions}

    def test_refused_actions_are_not_recorded(self, client, monitored, viewer_user):
        client.force_login(viewer_user)  # may view, may not rerun
        build = make_finished(monitored)
        assert 403 == client.post(reverse("sauci:rerun", args=[build.id])).status_code
        _, events = recorded(monitored)
        assert [] == [e for e in events if e.name == "ui_action"]

    def test_analytics_setting_off_records_nothing(
        self, client, settings, store, viewer_user, tmp_path
    ):
        settings.SAUCI = {"STORE": store, "DATA_DIR": str(tmp_path), "ANALYTICS": False}
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
        client.force_login(viewer_user)
        client.get(reverse("sauci:overview"))
        from sauci.monitoring.analytics import read_events

        assert [] == read_events(store)

    def test_the_usage_page_shows_recorded_events_with_a_graph(
        self, client, monitored, viewer_user
    ):
        client.force_login(viewer_user)
        client.get(reverse("sauci:overview"))
        client.get(reverse("sauci:builds"))
        recorded(monitored)
        response = client.get(reverse("sauci:usage"))
        assert 200 == response.status_code
        html = response.content.decode()
        assert "page_view" in html
        assert '<svg class="chart"' in html
        assert "Events per day" in html
        table = html.split("Recent events", 1)[1]
        assert "u_" in table and "viv" not in table  # hashed ids only

    def test_usage_page_escapes_properties(self, client, monitored, viewer_user):
        from sauci.contrib.django import conf

        conf.monitoring().analytics.track("x<script>", page="<img src=x onerror=alert(1)>")
        recorded(monitored)
        client.force_login(viewer_user)
        html = client.get(reverse("sauci:usage")).content.decode()
        assert "<img src=x" not in html and "<script>" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

    def test_the_usage_page_needs_the_view_permission(self, client, monitored):
        assert 302 == client.get(reverse("sauci:usage")).status_code


# -- workers on the overview ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_overview_lists_workers(viewer_client, store):
    store.save_worker(
        Worker(
            name="<b>w1</b>",
            host="box",
            labels=("linux", "gpu"),
            slots=4,
            running=(7,),
            heartbeat_at=time.time() - 120,
            state="online",
        )
    )
    html = viewer_client.get(reverse("sauci:overview")).content.decode()
    assert "&lt;b&gt;w1&lt;/b&gt;" in html and "<b>w1</b>" not in html
    assert "linux, gpu" in html
    assert "1 / 4" in html
    assert "2 min ago" in html
    assert "online" in html


@pytest.mark.django_db
def test_no_workers_no_section(viewer_client, store):
    assert "Workers" not in viewer_client.get(reverse("sauci:overview")).content.decode()


# -- system checks -----------------------------------------------------------------------------


def ids(**overrides):
    with override_settings(**overrides):
        return {m.id for m in checks.run_checks()}


def test_check_missing_middleware_is_reported():
    assert "sauci.I003" in ids(SAUCI={"STORE": "memory://", "ANALYTICS": True})
    # Analytics are opt-in: left to the environment, a missing middleware is no news.
    assert "sauci.I003" not in ids(SAUCI={"STORE": "memory://"})


def test_check_middleware_before_authentication_is_a_warning(settings):
    assert "sauci.W003" in ids(
        SAUCI={"STORE": "memory://"}, MIDDLEWARE=[MIDDLEWARE, *settings.MIDDLEWARE]
    )
    assert "sauci.W003" not in ids(
        SAUCI={"STORE": "memory://"}, MIDDLEWARE=[*settings.MIDDLEWARE, MIDDLEWARE]
    )


def test_check_bad_ready_checks_value():
    assert "sauci.E003" in ids(SAUCI={"READY_CHECKS": ["store", "nonsense"]})


def test_check_no_metrics_token_is_said(monkeypatch):
    monkeypatch.delenv("SAUCI_METRICS_TOKEN", raising=False)
    assert "sauci.I002" in ids(SAUCI={"STORE": "memory://"})
    assert "sauci.I002" not in ids(SAUCI={"STORE": "memory://", "METRICS_TOKEN": "t"})


def test_check_missing_prometheus_client_is_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert "sauci.W002" in ids(SAUCI={"STORE": "memory://"})


def test_the_django_extra_brings_what_the_apps_default_metrics_need():
    """METRICS is on by default: `pip install 'sauci[django]'` must not leave
    the metrics URL answering 501 (check sauci.W002)."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    names = {Requirement(r).name.replace("-", "_").lower() for r in extras["django"]}
    assert "prometheus_client" in names
    from sauci.contrib.django.conf import DEFAULTS

    assert DEFAULTS["METRICS"] is True
