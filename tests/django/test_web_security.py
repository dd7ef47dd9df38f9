"""The web side's defences: the content policy, log in and out, the login throttle's
check, server errors logged, and the standalone project's cookies and headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import checks
from django.test import Client
from django.urls import reverse
from test_views import make_build

from sauci.contrib.django.security import CONTENT_SECURITY_POLICY
from sauci.core.models import TestCase

TEMPLATES = Path(__file__).parents[2] / "sauci" / "contrib" / "django" / "templates"


def _html_pages(build):
    return [
        reverse("sauci:overview"),
        reverse("sauci:builds"),
        reverse("sauci:builds") + "?repo=/srv/app.git",
        reverse("sauci:build", args=[build.id]),
        reverse("sauci:tests", args=[build.id]),
        reverse("sauci:artifacts", args=[build.id]),
        reverse("sauci:log", args=[build.id, "lint"]),
        reverse("sauci:test_history") + "?repo=/srv/app.git&name=t",
        reverse("sauci:analytics"),
        reverse("sauci:analytics") + "?repo=/srv/app.git",
        reverse("sauci:usage"),
        reverse("sauci:login"),
    ]


@pytest.mark.django_db
class TestContentSecurityPolicy:
    def test_every_html_page_carries_the_policy(self, admin_client, store):
        """Each page the app renders as HTML, logged in with every permission."""
        build = make_build(store)
        store.append_log(build.id, "lint", b"\x1b[38;2;255;128;0mcoloured\n")
        store.add_test_results(build.id, "lint", [TestCase(name="t", status="failed")])
        for url in _html_pages(build):
            response = admin_client.get(url)
            assert (200, "text/html") == (
                response.status_code,
                response["Content-Type"].split(";")[0],
            ), url
            assert CONTENT_SECURITY_POLICY == response["Content-Security-Policy"], url

    def test_the_login_page_carries_it_for_anonymous_visitors(self, client, store):
        response = client.get(reverse("sauci:login"))
        assert CONTENT_SECURITY_POLICY == response["Content-Security-Policy"]

    def test_the_policy_allows_no_inline_script_or_style(self):
        directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
        assert ("'self'", "'self'", "'none'") == (
            directives["script-src"],
            directives["style-src"],
            directives["frame-ancestors"],
        )
        assert "unsafe" not in CONTENT_SECURITY_POLICY

    def test_the_badge_keeps_its_own_stricter_policy(self, client, store):
        make_build(store)
        response = client.get(reverse("sauci:badge"), {"repo": "/srv/app.git"})
        assert (
            "default-src 'none'; style-src 'unsafe-inline'" == (response["Content-Security-Policy"])
        )

    @pytest.mark.parametrize(
        "template", sorted(p.name for p in (TEMPLATES / "sauci").iterdir()), ids=str
    )
    def test_no_template_holds_inline_script_handlers_or_styles(self, template):
        """Scripts come from static/sauci/sauci.js only: no <script> body, no on*=, no style=."""
        text = (TEMPLATES / "sauci" / template).read_text()
        inline_scripts = [
            m.group(0)
            for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, re.S | re.I)
            if "src=" not in m.group(1) or m.group(2).strip()
        ]
        assert [] == inline_scripts
        assert [] == re.findall(r"\son[a-z]+\s*=", text, re.I)
        assert [] == re.findall(r"\sstyle\s*=", text, re.I)

    def test_log_colours_are_classes_not_inline_styles(self):
        """256-colour and 24-bit colours map to sauci.css classes (the policy blocks style=)."""
        from sauci.contrib.django.ansi import ansi_to_html

        assert '<span class="f208">x</span>' == ansi_to_html("\x1b[38;2;255;128;0mx")
        assert '<span class="f200 g232">x</span>' == ansi_to_html("\x1b[38;5;200;48;2;9;9;9mx")

    def test_a_colour_code_too_long_for_int_is_ignored_not_an_error(self):
        """A step printing ESC [ and 5,000 digits made every page of its log a 500:
        int() refuses more than 4,300 digits. A code that long means nothing."""
        from sauci.contrib.django.ansi import ansi_to_html

        assert "&lt;b&gt;x" == ansi_to_html("\x1b[" + "9" * 5000 + "m<b>x")
        assert '<span class="f1">x</span>' == ansi_to_html("\x1b[31;" + "1" * 5000 + "mx")

    def test_every_colour_class_is_in_the_style_sheet(self):
        css = (TEMPLATES.parent / "static" / "sauci" / "sauci.css").read_text()
        missing = [
            f".{kind}{n}{{" for kind in "fg" for n in range(256) if f".{kind}{n}{{" not in css
        ]
        assert [] == missing

    def test_nearest_colour(self):
        from sauci.contrib.django.ansi import color_256, nearest_256

        assert (231, 16, 196, 244) == (
            nearest_256(255, 255, 255),
            nearest_256(0, 0, 0),
            nearest_256(255, 0, 0),
            nearest_256(128, 128, 128),
        )
        assert all(nearest_256(*color_256(n)) in (n, 16, 231) or n >= 232 for n in range(16, 256))


@pytest.mark.django_db
class TestLogInAndOut:
    def test_anonymous_visitors_go_to_the_app_s_own_login_under_its_prefix(
        self, client, store, settings
    ):
        """Mounted at /ci/ in a site with no login page: /ci/login/, not a 404."""
        settings.ROOT_URLCONF = "uiproject.bare_urls"
        response = client.get(reverse("sauci:builds"))
        assert 302 == response.status_code
        assert "/ci/login/?next=/ci/builds/" == response["Location"]

    def test_a_configured_login_url_is_used(self, client, store, settings):
        settings.SAUCI = {"STORE": store, "LOGIN_URL": "/sso/"}
        assert client.get(reverse("sauci:builds"))["Location"].startswith("/sso/?next=")

    def test_login_goes_back_to_next(self, client, store, viewer_user):
        response = client.post(
            reverse("sauci:login"), {"username": "viv", "password": "pw", "next": "/ci/builds/"}
        )
        assert (302, "/ci/builds/") == (response.status_code, response["Location"])

    @pytest.mark.parametrize(
        "target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", ""]
    )
    def test_login_never_goes_to_another_site(self, client, store, viewer_user, target):
        """An unsafe (or missing) next lands on the overview, not /accounts/profile/."""
        response = client.post(
            reverse("sauci:login"), {"username": "viv", "password": "pw", "next": target}
        )
        assert (302, reverse("sauci:overview")) == (response.status_code, response["Location"])

    def test_the_header_has_a_logout_button_when_logged_in(self, viewer_client, store):
        html = viewer_client.get(reverse("sauci:overview")).content.decode()
        form = re.search(r'<form class="logout" method="post" action="([^"]+)">(.*?)</form>', html)
        assert form is not None
        assert reverse("sauci:logout") == form.group(1)
        assert 'name="csrfmiddlewaretoken"' in form.group(2)

    def test_no_logout_button_for_anonymous_visitors(self, client, store, settings):
        settings.SAUCI = {"STORE": store, "PUBLIC": True}
        assert b'class="logout"' not in client.get(reverse("sauci:overview")).content

    def test_post_logs_out(self, viewer_client, store, settings):
        settings.ROOT_URLCONF = "uiproject.bare_urls"
        response = viewer_client.post(reverse("sauci:logout"))
        assert (302, reverse("sauci:login")) == (response.status_code, response["Location"])
        assert 302 == viewer_client.get(reverse("sauci:overview")).status_code

    def test_get_does_not_log_out(self, viewer_client, store):
        """A link or an <img src> pointing at logout/ changes nothing."""
        assert 405 == viewer_client.get(reverse("sauci:logout")).status_code
        assert 200 == viewer_client.get(reverse("sauci:overview")).status_code

    def test_logout_needs_the_csrf_token(self, store, viewer_user):
        client = Client(enforce_csrf_checks=True)
        client.force_login(viewer_user)
        assert 403 == client.post(reverse("sauci:logout")).status_code
        assert 200 == client.get(reverse("sauci:overview")).status_code

    def test_logout_goes_to_a_safe_next_only(self, viewer_client, store, settings):
        settings.ROOT_URLCONF = "uiproject.bare_urls"
        ok = viewer_client.post(reverse("sauci:logout"), {"next": "/ci/builds/"})
        assert "/ci/builds/" == ok["Location"]
        viewer_client.get(reverse("sauci:login"))
        bad = viewer_client.post(reverse("sauci:logout"), {"next": "https://evil.example/"})
        assert reverse("sauci:login") == bad["Location"]


class TestLoginThrottleCheck:
    def _ids(self):
        from sauci.contrib.django.checks import check_login_throttle

        return [m.id for m in check_login_throttle()]

    def test_a_site_without_axes_is_warned(self):
        """The test project has not installed django-axes."""
        assert ["sauci.W005"] == self._ids()

    def test_a_site_with_axes_is_not(self, settings):
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "axes"]
        assert [] == self._ids()

    def test_the_check_is_registered(self):
        assert "sauci.W005" in {m.id for m in checks.run_checks(tags=[checks.Tags.security])}


@pytest.mark.django_db
class TestServerErrors:
    @pytest.fixture
    def logging_site(self, settings):
        settings.MIDDLEWARE = [
            *settings.MIDDLEWARE,
            "sauci.contrib.django.middleware.ErrorLogMiddleware",
        ]

    def test_a_failing_view_is_logged_with_its_traceback(self, logging_site, store):
        import traceback

        from sauci.testing.logs import capture_logs

        client = Client(raise_request_exception=False)
        with capture_logs() as logs:
            response = client.get("/boom/")
        assert 500 == response.status_code
        (entry,) = [e for e in logs if e["event"] == "request_failed"]
        assert ("GET", "/boom/", "error") == (entry["method"], entry["path"], entry["log_level"])
        frames = traceback.extract_tb(entry["exc_info"].__traceback__)
        assert "boom" == frames[-1].name
        assert "kaboom: secret detail" == str(entry["exc_info"])

    def test_the_visitor_gets_no_traceback(self, logging_site, store):
        client = Client(raise_request_exception=False)
        response = client.get("/boom/")
        assert 500 == response.status_code
        assert b"kaboom" not in response.content and b"Traceback" not in response.content

    def test_a_404_is_not_logged_as_an_error(self, logging_site, admin_client, store):
        from sauci.testing.logs import capture_logs

        with capture_logs() as logs:
            assert 404 == admin_client.get(reverse("sauci:build", args=[9])).status_code
        assert [] == [e for e in logs if e["event"] == "request_failed"]
