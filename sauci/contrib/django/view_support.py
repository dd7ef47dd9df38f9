"""What every page and action of the SauCI UI shares: who may see and do what,
the store and scheduler lookups, and the context each template gets.

Every view checks access itself: viewing needs ``sauci.view_builds`` unless
``SAUCI["PUBLIC"]`` (:func:`viewer`); each action needs its own permission
(``_require``), a POST and a CSRF token.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.http import urlencode

from sauci.contrib.django import conf
from sauci.core.models import Build, StepRun
from sauci.exceptions import NotFoundError

__all__ = ["MAX_ID", "IdConverter", "viewer"]

# The largest id or offset any store keeps (a signed 64-bit integer: SQLite's
# INTEGER, PostgreSQL's BIGINT). Larger values are refused before they reach
# a store, whose driver would fail on them.
MAX_ID = (1 << 63) - 1


class IdConverter:
    """URL converter for build ids: 1 to 19 digits, at most :data:`MAX_ID`.

    A larger number does not match the pattern (``to_python`` raising
    ValueError), so it answers 404 like any other unknown build.
    """

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is beyond the largest id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


_INTEGER = re.compile(r"-?[0-9]{1,19}")


class BadParameter(ValueError):
    """A query parameter or header that is not what the view takes (answered 400)."""


def int_param(raw: str | None, name: str, *, default: int | None = None, low: int = 0) -> int:
    """``raw`` as an integer from ``low`` to :data:`MAX_ID`, else :class:`BadParameter`.

    ``default`` is used when ``raw`` is missing or empty; without one a
    missing value is an error too.
    """
    text = (raw or "").strip()
    if not text:
        if default is None:
            raise BadParameter(f"{name} is required")
        return default
    # Digits only (int() would also take "1_000", "+5" and non-ASCII digits),
    # and at most 19 of them, so no huge number is ever converted.
    if _INTEGER.fullmatch(text) is None:
        raise BadParameter(f"{name} must be a whole number from {low} to {MAX_ID}")
    number = int(text)
    if not low <= number <= MAX_ID:
        raise BadParameter(f"{name} must be a whole number from {low} to {MAX_ID}")
    return number


def text_param(params: Any, name: str) -> str:
    """The text of ``params[name]`` ("" when missing), else :class:`BadParameter`.

    A NUL character is refused: no repository, branch or name holds one, and
    PostgreSQL refuses it in a query (the driver's error would be a 500).
    """
    value = str(params.get(name, ""))
    if "\x00" in value:
        raise BadParameter(f"{name} must not contain NUL characters")
    return value


def bad_request(exc: Exception) -> HttpResponse:
    """A 400 answer with the reason as plain text."""
    return HttpResponseBadRequest(f"{exc}\n", content_type="text/plain; charset=utf-8")


def _user(request: HttpRequest) -> Any:
    # A site without AuthenticationMiddleware has no request.user: anonymous.
    user = getattr(request, "user", None)
    if user is None:
        from django.contrib.auth.models import AnonymousUser

        user = AnonymousUser()
    return user


def _may_view(request: HttpRequest) -> bool:
    return bool(conf.config()["PUBLIC"] or _user(request).has_perm("sauci.view_builds"))


def viewer(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let through who may view; send anonymous users to log in, refuse the rest."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _may_view(request):
            if not _user(request).is_authenticated:
                from sauci.contrib.django.account_views import login_url

                return redirect_to_login(request.get_full_path(), login_url())
            raise PermissionDenied("you may not view SauCI builds")
        return view(request, *args, **kwargs)

    return wrapper


def _require(request: HttpRequest, perm: str) -> None:
    user = _user(request)
    if not user.is_authenticated or not user.has_perm(perm):
        raise PermissionDenied(f"needs the permission {perm}")


def _actor(request: HttpRequest) -> str:
    return _user(request).get_username()


def _scheduler() -> Any:
    from sauci.core.scheduler import Scheduler

    return Scheduler(conf.get_store())


def _build_or_404(build_id: int) -> Build:
    try:
        return conf.get_store().get_build(build_id)
    except NotFoundError:
        raise Http404(f"no build {build_id}") from None


def _step_or_404(build_id: int, name: str) -> StepRun:
    for step in conf.get_store().list_steps(build_id):
        if step.name == name:
            return step
    raise Http404(f"build {build_id} has no step {name!r}")


def _ctx(request: HttpRequest, **values: Any) -> dict[str, Any]:
    cfg = conf.config()
    user = _user(request)
    values.setdefault("refresh", False)
    return {
        "sauci_title": cfg["TITLE"],
        "refresh_ms": int(cfg["REFRESH_SECONDS"] * 1000),
        "can_trigger": user.has_perm("sauci.trigger_builds"),
        "can_rerun": user.has_perm("sauci.rerun_builds"),
        "can_cancel": user.has_perm("sauci.cancel_builds"),
        **values,
    }


def _ref(branch: str) -> str:
    return branch if branch.startswith("refs/") or not branch else f"refs/heads/{branch}"


def _qs(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
