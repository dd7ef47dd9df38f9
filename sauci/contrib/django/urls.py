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


# The pages of one build, under builds/<id>/. Step names may hold any
# character, "/" too: <path:step> comes last.
_BUILD_PAGES = (
    ("tests/", result_views.test_results, "tests"),
    ("artifacts/", build_views.artifacts, "artifacts"),
    ("artifacts/file", build_views.artifact_download, "artifact"),
    ("rerun/", action_views.rerun, "rerun"),
    ("cancel/", action_views.cancel, "cancel"),
    ("log/<path:step>", log_views.log_page, "log"),
    ("log-range/<path:step>", log_views.log_range, "log_range"),
    ("log-raw/<path:step>", log_views.log_raw, "log_raw"),
    ("log-stream/<path:step>", log_views.log_stream, "log_stream"),
    ("log-search/<path:step>", log_views.log_search, "log_search"),
    ("log-ts/<path:step>", log_views.log_timestamps, "log_ts"),
)

urlpatterns = [
    path("", repo_views.overview, name="overview"),
    path("builds/", build_views.build_list, name="builds"),
    path("builds/<sauci_id:build_id>/", build_views.build_detail, name="build"),
    *(
        path(f"builds/<sauci_id:build_id>/{route}", view, name=name)
        for route, view, name in _BUILD_PAGES
    ),
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
