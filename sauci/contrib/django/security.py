"""Response headers of the app's own pages: the Content-Security-Policy.

Every view of :mod:`sauci.contrib.django.urls` is wrapped in :func:`csp`, so
the header is there whether or not the host site installs any middleware.
The pages load their one script and one style sheet from the site itself
(static/sauci/), hold no inline script, event handler or ``style``
attribute, and fetch only from the same origin, so the policy allows
nothing else. The other security headers (nosniff, Referrer-Policy,
X-Frame-Options) and the cookie flags are the site's: Django's
SecurityMiddleware, XFrameOptionsMiddleware and settings set them (see
docs/ui.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

__all__ = ["CONTENT_SECURITY_POLICY", "csp"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Add :data:`CONTENT_SECURITY_POLICY` to the view's HTML answers.

    A response that already has a policy keeps it (the badge, the raw log
    and downloads set a stricter one of their own).
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if "Content-Security-Policy" not in response and response.get(
            "Content-Type", ""
        ).startswith("text/html"):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapper
