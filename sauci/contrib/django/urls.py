"""URLs of the SauCI UI; mount with ``path("ci/", include("sauci.contrib.django.urls"))``."""

from __future__ import annotations

from django.urls import path

from sauci.contrib.django import log_views, monitoring, views

app_name = "sauci"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("builds/", views.build_list, name="builds"),
    path("builds/<int:build_id>/", views.build_detail, name="build"),
    path("builds/<int:build_id>/tests/", views.test_results, name="tests"),
    path("builds/<int:build_id>/artifacts/", views.artifacts, name="artifacts"),
    path("builds/<int:build_id>/artifacts/file", views.artifact_download, name="artifact"),
    path("builds/<int:build_id>/rerun/", views.rerun, name="rerun"),
    path("builds/<int:build_id>/cancel/", views.cancel, name="cancel"),
    # Step names may hold any character but "/" is allowed too: <path:> last.
    path("builds/<int:build_id>/log/<path:step>", log_views.log_page, name="log"),
    path("builds/<int:build_id>/log-range/<path:step>", log_views.log_range, name="log_range"),
    path("builds/<int:build_id>/log-raw/<path:step>", log_views.log_raw, name="log_raw"),
    path("builds/<int:build_id>/log-stream/<path:step>", log_views.log_stream, name="log_stream"),
    path("builds/<int:build_id>/log-search/<path:step>", log_views.log_search, name="log_search"),
    path("builds/<int:build_id>/log-ts/<path:step>", log_views.log_timestamps, name="log_ts"),
    path("tests/history/", views.test_history, name="test_history"),
    path("analytics/", views.analytics, name="analytics"),
    path("usage/", monitoring.usage, name="usage"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("badge.svg", views.badge, name="badge"),
    path("trigger/", views.trigger, name="trigger"),
    path("webhook/", views.webhook, name="webhook"),
]
