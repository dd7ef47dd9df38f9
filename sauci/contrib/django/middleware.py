"""AnalyticsMiddleware: page views and actions of the SauCI UI, as usage events;
ErrorLogMiddleware: every server error logged with its traceback.

Add ``"sauci.contrib.django.middleware.AnalyticsMiddleware"`` to MIDDLEWARE
after AuthenticationMiddleware. It records a ``page_view`` for each full page
of the app (not the live refreshes, logs' JSON or streams) and a ``ui_action``
for each rerun, cancel and trigger that went through, with the user id hashed
(per-installation salt) and nothing else about the person. It never changes
the response and never fails a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from sauci._logging import get_logger

__all__ = ["ACTIONS", "PAGES", "AnalyticsMiddleware", "ErrorLogMiddleware"]

log = get_logger(__name__)

PAGES = frozenset(
    {
        "overview",
        "builds",
        "build",
        "tests",
        "test_history",
        "artifacts",
        "log",
        "analytics",
        "usage",
    }
)
ACTIONS = frozenset({"rerun", "cancel", "trigger"})


class AnalyticsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._failed = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        try:
            self._record(request, response)
        except Exception:  # analytics must never break a page
            if not self._failed:
                self._failed = True
                log.exception("analytics_middleware_failed")
        return response

    def _record(self, request: HttpRequest, response: HttpResponse) -> None:
        match = getattr(request, "resolver_match", None)
        if match is None or "sauci" not in match.namespaces:
            return
        name = match.url_name
        if request.method == "GET":
            if (
                name not in PAGES
                or response.status_code != 200
                or request.headers.get("X-Requested-With") == "fetch"  # a live refresh
            ):
                return
            event, props = "page_view", {"page": name}
        elif request.method == "POST":
            # A refused action (403, 404, 405) is not a use of the feature.
            if name not in ACTIONS or response.status_code not in (200, 302, 303):
                return
            event, props = "ui_action", {"action": name}
            if name == "rerun":
                props["failed_only"] = request.POST.get("failed_only") == "1"
        else:
            return
        from sauci.contrib.django import conf

        if conf.config()["ANALYTICS"] is False:
            return
        analytics = conf.monitoring().analytics
        if analytics is None:
            return
        user: Any = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else None
        analytics.track(event, user=username, **props)


def _answered_4xx() -> tuple[type[Exception], ...]:
    from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
    from django.http import Http404
    from django.http.multipartparser import MultiPartParserError

    return (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


_ANSWERED_4XX = _answered_4xx()


class ErrorLogMiddleware:
    """Logs each exception a view raises, with its traceback, through SauCI's logging.

    Django logs them to the ``django.request`` logger, which sends nothing
    anywhere with DEBUG off unless the site configured LOGGING (its default
    handler is mail to ADMINS). ``sauci serve`` installs this middleware so
    that a failure lands in the server's own log (``request_failed``, with
    method, path and view), while the visitor gets the plain 500 page with
    no traceback. It changes no response.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, _ANSWERED_4XX):
            return  # Django answers these 404, 403 or 400: not server errors
        match = getattr(request, "resolver_match", None)
        log.error(
            "request_failed",
            method=request.method,
            path=request.path,
            view=match.view_name if match is not None else None,
            exc_info=exception,
        )
