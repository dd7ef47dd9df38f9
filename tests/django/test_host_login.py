"""SauCI embedded under /ci/ in a host site: whose login page an anonymous visitor
is sent to, and where a user lands after logging in (issue "Results pages for
daily use", item 6). Never a 404: not /accounts/login/ in a site that has none,
not /accounts/profile/ after logging in.

``uiproject.urls`` is a host with its own login page at /accounts/login/ (named
``host-login``); ``uiproject.bare_urls`` is a host with none.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _login_page(client, path: str = "/ci/builds/") -> str:
    response = client.get(path)
    assert 302 == response.status_code
    return response["Location"]


def _logs_in(client, login_location: str) -> str:
    """Fill the login form the redirect led to; the page it lands on."""
    form_url, _, query = login_location.partition("?")
    assert 200 == client.get(login_location).status_code  # the login page is there
    data = {"username": "viv", "password": "pw"}
    if query.startswith("next="):
        from urllib.parse import unquote

        data["next"] = unquote(query[len("next=") :])
    response = client.post(form_url, data)
    assert 302 == response.status_code, "the login was refused"
    return response["Location"]


class TestAHostWithItsOwnLoginPage:
    def test_anonymous_visitors_go_to_the_host_s_login_url(self, client, store):
        assert "/accounts/login/?next=/ci/builds/" == _login_page(client)

    def test_a_login_url_given_as_a_url_name_is_followed(self, client, store, settings):
        settings.LOGIN_URL = "host-login"
        assert "/accounts/login/?next=/ci/builds/" == _login_page(client)

    def test_a_login_url_on_another_site_is_followed(self, client, store, settings):
        settings.LOGIN_URL = "https://sso.example/login"
        assert _login_page(client).startswith("https://sso.example/login?next=")

    def test_after_logging_in_there_the_page_asked_for_opens(self, client, store, viewer_user):
        landed = _logs_in(client, _login_page(client))
        assert "/ci/builds/" == landed
        assert 200 == client.get(landed).status_code

    def test_sauci_s_own_setting_wins_over_the_host_s(self, client, store, settings):
        settings.SAUCI = {"STORE": store, "LOGIN_URL": "/sso/"}
        assert _login_page(client).startswith("/sso/?next=")


class TestAHostWithNoLoginPage:
    @pytest.fixture(autouse=True)
    def bare_host(self, settings):
        settings.ROOT_URLCONF = "uiproject.bare_urls"

    def test_the_default_login_url_that_would_404_is_not_used(self, client, store):
        assert 404 == client.get("/accounts/login/").status_code
        assert "/ci/login/?next=/ci/builds/" == _login_page(client)

    def test_a_login_url_the_site_does_not_answer_is_not_used(self, client, store, settings):
        settings.LOGIN_URL = "/nowhere/login/"
        assert "/ci/login/?next=/ci/builds/" == _login_page(client)

    def test_a_login_url_naming_no_view_is_not_used(self, client, store, settings):
        settings.LOGIN_URL = "no-such-view"
        assert "/ci/login/?next=/ci/builds/" == _login_page(client)

    def test_every_page_sends_to_the_app_s_login_and_back(self, client, store, viewer_user):
        for path in ("/ci/", "/ci/builds/", "/ci/analytics/"):
            client.logout()
            landed = _logs_in(client, _login_page(client, path))
            assert (path, 200) == (landed, client.get(landed).status_code)

    def test_logging_in_without_next_lands_on_the_overview_not_the_profile(
        self, client, store, viewer_user
    ):
        """Django's LOGIN_REDIRECT_URL default, /accounts/profile/, is no page here."""
        landed = _logs_in(client, reverse("sauci:login"))
        assert reverse("sauci:overview") == landed == "/ci/"
        assert 200 == client.get(landed).status_code

    def test_logging_out_leads_to_a_login_page_that_is_there(self, viewer_client, store):
        location = viewer_client.post(reverse("sauci:logout"))["Location"]
        assert 200 == viewer_client.get(location).status_code


def test_the_django_range_allowed_is_the_one_ci_tests():
    """pyproject.toml allows only Django releases CI installs: the lowest (4.2,
    by .ci/lowest) up to the newest this Python can run (the main run). Django 6
    needs Python 3.12; on an older CI Python it must not be allowed."""
    import sys
    import tomllib
    from pathlib import Path

    import django
    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())
    extras = data["project"]["optional-dependencies"]
    ranges = {
        str(Requirement(r).specifier)
        for extra in ("django", "test")
        for r in extras[extra]
        if Requirement(r).name.lower() == "django"
    }
    assert 1 == len(ranges), f"the django and test extras disagree: {ranges}"
    allowed = Requirement(f"django{ranges.pop()}").specifier
    assert allowed.contains(django.__version__)
    assert allowed.contains("4.2") and not allowed.contains("4.1.13")
    if sys.version_info < (3, 12):
        assert not allowed.contains("6.0"), "Django 6 is allowed but CI's Python cannot run it"
    lowest = (Path(__file__).resolve().parents[2] / ".ci" / "lowest").read_text()
    assert "tests/django/test_host_login.py" in lowest


@pytest.fixture
def anonymous_site(live_server, settings, viewer_user):
    from sauci.storage.memory import MemoryStore

    settings.SAUCI = {"STORE": MemoryStore()}
    return live_server.url


def _log_in_through_the_browser(base: str, asked: str) -> tuple[str, str]:
    """In Chromium, an anonymous visitor opens ``asked`` and fills the login form
    it is sent to: (the login page's path, the path it lands on after)."""
    from urllib.parse import urlsplit

    import test_browser_monitoring as monitoring_tests

    sync_playwright = monitoring_tests._need_browser()
    with sync_playwright() as pw:
        browser = monitoring_tests.launch_chromium(pw)
        try:
            page = monitoring_tests.Tab(browser, base).page
            response = page.goto(f"{base}{asked}")
            assert response is not None and 200 == response.status
            login_path = urlsplit(page.url).path
            page.fill("input[name=username]", "viv")
            page.fill("input[name=password]", "pw")
            with page.expect_navigation():
                page.press("input[name=password]", "Enter")
            assert "Please enter a correct" not in page.content()
            landed = page.goto(page.url)  # the page it landed on answers, not 404
            assert landed is not None and 200 == landed.status
            return login_path, urlsplit(page.url).path
        finally:
            browser.close()


@pytest.mark.slow
def test_in_chromium_a_host_s_login_page_leads_back_to_the_page_asked_for(anonymous_site):
    assert ("/accounts/login/", "/ci/builds/") == _log_in_through_the_browser(
        anonymous_site, "/ci/builds/"
    )


@pytest.mark.slow
def test_in_chromium_a_host_with_no_login_page_uses_the_app_s_own(anonymous_site, settings):
    settings.ROOT_URLCONF = "uiproject.bare_urls"
    assert ("/ci/login/", "/ci/analytics/") == _log_in_through_the_browser(
        anonymous_site, "/ci/analytics/"
    )
