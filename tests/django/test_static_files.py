"""The built-in project's static files (sauci.contrib.django.project.static):
WhiteNoise with its table of files filled on first request, not at start,
answering every file as WhiteNoise's own middleware does."""

from __future__ import annotations

import pytest
from django.http import HttpResponseNotFound
from django.test import RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

from sauci.contrib.django.project.static import StaticFilesMiddleware


def _fell_through(request):
    return HttpResponseNotFound("not a static file")


@pytest.fixture
def finders(settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = False


def _answer(middleware, path, **headers):
    response = middleware(RequestFactory().get(path, **headers))
    body = b"".join(response) if response.streaming else response.content
    return response.status_code, sorted(response.items()), body


def test_nothing_is_scanned_when_the_middleware_is_made(finders):
    stock = WhiteNoiseMiddleware(_fell_through)
    assert "/static/sauci/sauci.css" in stock.files  # WhiteNoise's own scans at start
    assert {} == StaticFilesMiddleware(_fell_through).files


def test_every_file_is_answered_as_whitenoise_answers_it(finders):
    stock = WhiteNoiseMiddleware(_fell_through)
    on_demand = StaticFilesMiddleware(_fell_through)
    assert stock.files, "the test project has static files"
    for url in stock.files:
        assert _answer(stock, url) == _answer(on_demand, url), url
    assert set(stock.files) == set(on_demand.files)


def test_a_conditional_request_is_answered_not_modified(finders):
    on_demand = StaticFilesMiddleware(_fell_through)
    status, headers, _ = _answer(on_demand, "/static/sauci/sauci.css")
    assert 200 == status
    etag = dict(headers)["ETag"]
    assert 304 == _answer(on_demand, "/static/sauci/sauci.css", HTTP_IF_NONE_MATCH=etag)[0]


@pytest.mark.parametrize(
    "path",
    [
        "/static/sauci/no-such-file.css",
        "/static/sauci/",
        "/static/sauci",  # a directory
        "/static/sauci/../sauci/sauci.css",  # not canonical
        "/static/../settings.py",
        "/static//etc/passwd",
        "/builds/",  # not under STATIC_URL
    ],
)
def test_what_is_no_static_file_falls_through_and_is_not_kept(finders, path):
    on_demand = StaticFilesMiddleware(_fell_through)
    response = on_demand(RequestFactory().get(path))
    assert (404, b"not a static file") == (response.status_code, response.content)
    assert {} == on_demand.files
