"""Log in and log out, inside the app's URL namespace (``sauci:login``, ``sauci:logout``).

The app carries its own login page so that it works mounted under any prefix
(``/ci/``) in a site that has no ``/accounts/login/``. After logging in the
user goes back to ``next`` when it is a safe URL of this site (Django's
``url_has_allowed_host_and_scheme``, as LoginView checks it), else to the
overview. Logging out is a POST with a CSRF token: a link or an image on
another page cannot log anybody out.
"""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from sauci.contrib.django import conf

__all__ = ["LoginView", "login_url", "logout"]


def login_url() -> str:
    """Where to log in: ``SAUCI["LOGIN_URL"]`` (a URL or URL name), else the app's own page."""
    configured = conf.config()["LOGIN_URL"]
    return resolve_url(configured) if configured else reverse("sauci:login")


def _safe_next(request: HttpRequest, target: str) -> str | None:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


class LoginView(auth_views.LoginView):
    """Django's LoginView with the app's template; lands on ``next`` or the overview."""

    template_name = "sauci/login.html"

    def get_default_redirect_url(self) -> str:
        # Not LOGIN_REDIRECT_URL: its default, /accounts/profile/, is no page of this app.
        return reverse("sauci:overview")


@require_POST
@csrf_protect
def logout(request: HttpRequest) -> HttpResponse:
    """Log out (POST only; GET answers 405 and changes nothing), then go to ``next`` or log in."""
    auth.logout(request)
    target = _safe_next(request, request.POST.get("next", "")) or login_url()
    return HttpResponseRedirect(target)
