"""Log in and log out, inside the app's URL namespace (``sauci:login``, ``sauci:logout``).

Anonymous visitors go to ``SAUCI["LOGIN_URL"]`` when set, else to the host
site's ``LOGIN_URL`` when that is a page of the site (it resolves in the
URLconf) or another site's address, else to the app's own login page, which
works mounted under any prefix (``/ci/``) in a site that has no login page of
its own: never to a 404. After logging in on the app's page the
user goes back to ``next`` when it is a safe URL of this site (Django's
``url_has_allowed_host_and_scheme``, as LoginView checks it), else to the
overview. Logging out is a POST with a CSRF token: a link or an image on
another page cannot log anybody out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from sauci.contrib.django import conf

__all__ = ["LoginView", "login_url", "logout"]


def login_url() -> str:
    """Where to log in: ``SAUCI["LOGIN_URL"]`` (a URL or URL name), else the host
    site's ``LOGIN_URL`` when it leads somewhere, else the app's own page."""
    configured = conf.config()["LOGIN_URL"]
    if configured:
        return resolve_url(configured)
    return _host_login_url() or reverse("sauci:login")


def _host_login_url() -> str | None:
    """The host's ``settings.LOGIN_URL`` if it is another site's address or a path
    this site's URLconf answers; None for Django's default ``/accounts/login/``
    in a site that has no such page."""
    try:
        url = str(resolve_url(settings.LOGIN_URL))
    except NoReverseMatch:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return url
    path, prefix = parts.path, get_script_prefix()
    if prefix != "/" and path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    try:
        resolve(path)
    except Resolver404:
        return None
    return url


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
