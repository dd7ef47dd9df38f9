"""System checks for the ``SAUCI`` setting and the monitoring wiring.

Ids: sauci.E001-E003 (the setting itself), sauci.I001 (no webhook secret),
sauci.W002 (metrics on, prometheus_client missing), sauci.I002 (metrics on,
no token: Prometheus cannot scrape without logging in), sauci.I003
(analytics on, AnalyticsMiddleware not installed), sauci.W003
(AnalyticsMiddleware before AuthenticationMiddleware: every user is anonymous),
sauci.E004 (the broker URL is malformed), sauci.W004 (a broker is set but
Celery is not installed), sauci.W005 (django-axes is not installed: failed
logins are not throttled).
"""

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from sauci.contrib.django.conf import DEFAULTS, problems

MIDDLEWARE = "sauci.contrib.django.middleware.AnalyticsMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    raw = getattr(settings, "SAUCI", None)
    found: list[checks.CheckMessage] = [
        checks.Error(p.message, hint=p.hint or None, id=p.id) for p in problems(raw)
    ]
    if not found:
        cfg = raw or {}
        if not (
            cfg.get("WEBHOOK_SECRET")
            or cfg.get("WEBHOOK_TOKEN")
            or os.environ.get("SAUCI_WEBHOOK_SECRET")
            or os.environ.get("SAUCI_WEBHOOK_TOKEN")
        ):
            found.append(
                checks.Info(
                    "no webhook secret is set; the webhook receiver refuses every delivery",
                    hint="set SAUCI['WEBHOOK_SECRET'] or the environment variable "
                    "SAUCI_WEBHOOK_SECRET to receive pushes from GitHub, Gitea or GitLab",
                    id="sauci.I001",
                )
            )
    return found


def check_monitoring(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    raw = getattr(settings, "SAUCI", None)
    if problems(raw):
        return []  # check_settings reports those
    cfg = {**DEFAULTS, **(raw or {})}
    found: list[checks.CheckMessage] = []
    if cfg["METRICS"]:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            found.append(
                checks.Warning(
                    "SAUCI['METRICS'] is on but prometheus_client is not installed; "
                    "the metrics URL answers 501",
                    hint="pip install 'sauci[metrics]', or set SAUCI['METRICS'] = False",
                    id="sauci.W002",
                )
            )
        if not (cfg["METRICS_TOKEN"] or os.environ.get("SAUCI_METRICS_TOKEN") or cfg["PUBLIC"]):
            found.append(
                checks.Info(
                    "no metrics token is set; only logged-in viewers can read the metrics URL",
                    hint="set SAUCI['METRICS_TOKEN'] or SAUCI_METRICS_TOKEN and give Prometheus "
                    "the same value as its bearer token (authorization: credentials)",
                    id="sauci.I002",
                )
            )
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if cfg["ANALYTICS"] and MIDDLEWARE not in middleware:
        found.append(
            checks.Info(
                "SAUCI['ANALYTICS'] is on but AnalyticsMiddleware is not installed; "
                "page views and actions are not recorded",
                hint=f"add {MIDDLEWARE!r} to MIDDLEWARE after {AUTH_MIDDLEWARE!r}, "
                "or set SAUCI['ANALYTICS'] = False",
                id="sauci.I003",
            )
        )
    if MIDDLEWARE in middleware and (
        AUTH_MIDDLEWARE not in middleware
        or middleware.index(MIDDLEWARE) < middleware.index(AUTH_MIDDLEWARE)
    ):
        found.append(
            checks.Warning(
                "AnalyticsMiddleware comes before AuthenticationMiddleware (or that is missing); "
                "every page view is recorded as anonymous",
                hint=f"put {MIDDLEWARE!r} after {AUTH_MIDDLEWARE!r} in MIDDLEWARE",
                id="sauci.W003",
            )
        )
    return found


def check_broker(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The broker (``SAUCI["BROKER"]`` or ``SAUCI_BROKER``): a URL kombu knows, Celery present.

    Celery is imported only when a broker is set: a site without one never pays for it.
    """
    from django.conf import settings

    raw = getattr(settings, "SAUCI", None)
    if problems(raw):
        return []  # check_settings reports those
    url = (raw or {}).get("BROKER")
    where = "SAUCI['BROKER']"
    if not url:
        url, where = os.environ.get("SAUCI_BROKER"), "SAUCI_BROKER"
    if not url:
        return []
    from sauci.distributed import check_broker_url
    from sauci.exceptions import ConfigError, MissingDependencyError

    try:
        check_broker_url(url)
    except MissingDependencyError:
        return [
            checks.Warning(
                f"{where} is set but Celery is not installed; manage.py sauci_serve and "
                "sauci_worker cannot start, and readyz reports the broker as not ready",
                hint="pip install 'sauci[celery]', or remove the broker to build in-process",
                id="sauci.W004",
            )
        ]
    except ConfigError as exc:
        return [
            checks.Error(
                f"{where}: {exc}",
                hint="a Celery broker URL such as 'redis://HOST:6379/0' "
                "or 'amqp://USER:PASSWORD@HOST:5672//'",
                id="sauci.E004",
            )
        ]
    return []


AXES_APP = "axes"
AXES_MIDDLEWARE = "axes.middleware.AxesMiddleware"
AXES_BACKEND = "axes.backends.AxesStandaloneBackend"


def check_login_throttle(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """sauci.W005: the site has not installed django-axes, so password guessing is unlimited.

    Axes checks its own wiring (middleware, backend) once it is installed; a
    site that throttles logins another way silences this id.
    """
    from django.apps import apps

    if apps.is_installed(AXES_APP):
        return []
    return [
        checks.Warning(
            "django-axes is not installed: failed logins to SauCI are not throttled, "
            "so passwords can be guessed at full speed",
            hint=f"add {AXES_APP!r} to INSTALLED_APPS, {AXES_MIDDLEWARE!r} last in MIDDLEWARE "
            f"and {AXES_BACKEND!r} first in AUTHENTICATION_BACKENDS, then migrate "
            "(see docs/ui.md); a site that throttles logins another way adds 'sauci.W005' "
            "to SILENCED_SYSTEM_CHECKS",
            id="sauci.W005",
        )
    ]
