"""URLs of the SauCI UI; mount with ``path("ci/", include("sauci.contrib.django.urls"))``."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from django.urls import URLPattern, register_converter
from django.urls import path as django_path

from sauci.contrib.django import (
    account_views,
    action_views,
    build_views,
    log_views,
    monitoring,
    repo_views,
    result_views,
)
from sauci.contrib.django.security import csp
from sauci.contrib.django.view_support import IdConverter

# Build ids past the stores' 64-bit range do not match: 404, never a driver error.
register_converter(IdConverter, "sauci_id")

app_name = "sauci"


def path(route: str, view: Callable[..., HttpResponse], *, name: str) -> URLPattern:
    """``django.urls.path`` with the view wrapped in :func:`csp`: every page of the
    app carries the Content-Security-Policy, whatever middleware the site has."""
    return django_path(route, csp(view), name=name)


urlpatterns = [
    path("", repo_views.overview, name="overview"),
    path("builds/", build_views.build_list, name="builds"),
    path("builds/<sauci_id:build_id>/", build_views.build_detail, name="build"),
    path("builds/<sauci_id:build_id>/tests/", result_views.test_results, name="tests"),
    path("builds/<sauci_id:build_id>/artifacts/", build_views.artifacts, name="artifacts"),
    path(
        "builds/<sauci_id:build_id>/artifacts/file", build_views.artifact_download, name="artifact"
    ),
    path("builds/<sauci_id:build_id>/rerun/", action_views.rerun, name="rerun"),
    path("builds/<sauci_id:build_id>/cancel/", action_views.cancel, name="cancel"),
    # Step names may hold any character but "/" is allowed too: <path:> last.
    path("builds/<sauci_id:build_id>/log/<path:step>", log_views.log_page, name="log"),
    path("builds/<sauci_id:build_id>/log-range/<path:step>", log_views.log_range, name="log_range"),
    path("builds/<sauci_id:build_id>/log-raw/<path:step>", log_views.log_raw, name="log_raw"),
    path(
        "builds/<sauci_id:build_id>/log-stream/<path:step>", log_views.log_stream, name="log_stream"
    ),
    path(
        "builds/<sauci_id:build_id>/log-search/<path:step>", log_views.log_search, name="log_search"
    ),
    path("builds/<sauci_id:build_id>/log-ts/<path:step>", log_views.log_timestamps, name="log_ts"),
    path("tests/history/", result_views.test_history, name="test_history"),
    path("analytics/", repo_views.analytics, name="analytics"),
    path("usage/", monitoring.usage, name="usage"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("badge.svg", repo_views.badge, name="badge"),
    path("trigger/", action_views.trigger, name="trigger"),
    path("webhook/", action_views.webhook, name="webhook"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", account_views.logout, name="logout"),
]
