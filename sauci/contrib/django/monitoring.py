"""Monitoring endpoints of the app: metrics/, healthz/, readyz/, and the usage page.

``healthz/`` answers 200 while the process can answer at all (liveness).
``readyz/`` runs the checks of :mod:`sauci.monitoring.health` (the broker's
too when one is set) and answers 503 with the reasons when one fails; both are public, as load balancers and
probes do not log in, and say nothing beyond the reasons. ``metrics/`` is for
Prometheus: it needs the bearer token ``METRICS_TOKEN`` (or
``SAUCI_METRICS_TOKEN``) or a user who may view builds.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter, defaultdict
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sauci.contrib.django import conf
from sauci.contrib.django.svg import bar_chart, line_chart
from sauci.contrib.django.view_support import _ctx, _may_view, _user, viewer

__all__ = ["healthz", "metrics", "readyz", "usage"]

MISSING_PROMETHEUS = (
    "Prometheus metrics need prometheus_client, which is not installed.\n"
    "Install it with: pip install 'sauci[metrics]'\n"
)


def _token_ok(request: HttpRequest) -> bool:
    token = conf.metrics_token()
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of this process's metrics."""
    if not conf.config()["METRICS"]:
        raise Http404("metrics are switched off (SAUCI['METRICS'])")
    if not (_token_ok(request) or _may_view(request)):
        if _user(request).is_authenticated:
            raise PermissionDenied("you may not read SauCI's metrics")
        response = HttpResponse(
            "metrics need a bearer token (SAUCI['METRICS_TOKEN'] or SAUCI_METRICS_TOKEN)\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="sauci-metrics"'
        return response
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return HttpResponse(
            MISSING_PROMETHEUS, status=501, content_type="text/plain; charset=utf-8"
        )
    found = conf.monitoring().metrics
    if found is None:
        return HttpResponse(
            "metrics are not collected in this process\n",
            status=501,
            content_type="text/plain; charset=utf-8",
        )
    body, content_type = found.render()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: 200 whenever the process answers; no store or network is touched."""
    return JsonResponse({"alive": True})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when every configured check passes, else 503 with the reasons."""
    from sauci.monitoring.health import readiness

    cfg = conf.config()
    result = readiness(
        conf.get_store(),
        conf.data_dir(),
        checks=tuple(cfg["READY_CHECKS"]),
        stale_after=cfg["HEARTBEAT_STALE_SECONDS"],
        stuck_after=cfg["QUEUE_STUCK_SECONDS"],
        broker=conf.broker(),
    )
    return JsonResponse(result.as_dict(), status=200 if result.ready else 503)


DAYS = 30


@require_GET
@viewer
def usage(request: HttpRequest) -> HttpResponse:
    """Usage analytics from the local sink's events: what is used, how much, per day."""
    from sauci.monitoring.analytics import read_events

    # The store keeps events in the order they arrived: each process's sink
    # sends batches of its own, so order them by when they happened.
    events = sorted(read_events(conf.get_store(), limit=5000), key=lambda e: e.at)
    by_name = Counter(e.name for e in events)
    pages = Counter(str(e.properties.get("page", "")) for e in events if e.name == "page_view")
    actions = Counter(str(e.properties.get("action", "")) for e in events if e.name == "ui_action")
    commands = Counter(
        str(e.properties.get("command", "")) for e in events if e.name == "cli_command"
    )
    today = int(time.time() // 86400)
    per_day: dict[int, int] = defaultdict(int)
    for event in events:
        per_day[int(event.at // 86400)] += 1
    daily = [float(per_day.get(day, 0)) for day in range(today - DAYS + 1, today + 1)]
    users = len({e.distinct_id for e in events if e.distinct_id.startswith("u_")})
    recent: list[dict[str, Any]] = [
        {"event": e, "props": sorted(e.properties.items())} for e in reversed(events[-50:])
    ]
    return render(
        request,
        "sauci/usage.html",
        _ctx(
            request,
            total=len(events),
            users=users,
            daily_chart=line_chart(daily if events else [], unit=" events"),
            names_chart=bar_chart(_top(by_name), unit=""),
            pages_chart=bar_chart(_top(pages), unit=""),
            actions_chart=bar_chart(_top(actions), unit=""),
            commands_chart=bar_chart(_top(commands), unit=""),
            recent=recent,
            days=DAYS,
        ),
    )


def _top(counts: Counter[str], n: int = 10) -> list[tuple[str, float]]:
    return [(name or "(none)", float(count)) for name, count in counts.most_common(n)]
