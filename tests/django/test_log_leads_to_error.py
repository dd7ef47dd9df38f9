"""Logs that lead to the error: a failed step opens at its first error line
(the last lines when none matches), a running step at its tail, URLs are
links (http and https only, hostile ones stay text), times show their
absolute value on hover, skipped reasons are not shown as failures.
"""

from __future__ import annotations

import re
import time

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.contrib.django.ansi import linked
from sauci.contrib.django.log_errors import first_error
from sauci.core.models import BuildRequest, Status, StepRun

Tab, in_browser = monitoring_tests.Tab, monitoring_tests.in_browser
# The live-server site over a MemoryStore and the Chromium of the monitoring tests.
site = monitoring_tests.site
browser = monitoring_tests.browser

ERROR_LINE = 350
HOSTILE_URLS = (
    b"javascript:alert(1) data:text/html,<script>window.__pwned=1</script>\n"
    b'see https://ci.example.com/x?a=1&b=2"onmouseover="window.__pwned=2\n'
    b'<a href="javascript:window.__pwned=3">https://x.example/\'><img src=x>\n'
)


def _step(store, log: bytes, status=Status.FAILED, reason="exit code 1"):
    build = store.create_build(BuildRequest(repo="/srv/git/app.git", ref="refs/heads/main"))
    now = time.time()
    done = status.done
    store.update_build(
        build.id,
        status=status if done else Status.RUNNING,
        started_at=now - 60,
        finished_at=now if done else None,
    )
    store.save_step(
        StepRun(
            build_id=build.id,
            name="test",
            position=0,
            status=status,
            reason=reason,
            exit_code=1 if status is Status.FAILED else None,
            started_at=now - 50,
            finished_at=now if done else None,
        )
    )
    store.append_log(build.id, "test", log)
    return build


def _noisy_log(error_at=ERROR_LINE, total=3000):
    lines = [b"ok step %d: compiling module with -Werror, Errors: 0" % i for i in range(total)]
    if error_at:
        lines[error_at - 1] = b"\x1b[31mE   AssertionError: assert 1 == 2\x1b[0m"
        lines[error_at + 5] = b"FAILED tests/test_x.py::test_later"
    return b"\n".join(lines) + b"\n"


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, offset: int, limit: int) -> bytes:
        return self.data[offset : offset + limit]


@pytest.mark.parametrize(
    ("line", "hit"),
    [
        (b"TypeError: bad operand", True),
        (b"Traceback (most recent call last):", True),
        (b"src/x.c:3:1: error: expected ';'", True),
        (b"error[E0308]: mismatched types", True),
        (b"FAILED tests/a.py::t - assert 0", True),
        (b"ERROR: could not build wheels", True),
        (b"fatal: not a git repository", True),
        (b"thread 'main' panicked at src/main.rs:2:5", True),
        (b"cc -Werror -Wall x.c", False),
        (b"Errors: 0, Warnings: 3", False),
        (b"error_count = 0", False),
        (b"all 42 tests passed", False),
    ],
)
def test_the_error_patterns(line, hit):
    log = _Bytes(b"fine\n" + line + b"\nfine\n")
    assert (5 if hit else None) == first_error(log, 0, len(log.data))


def test_the_first_error_is_found_across_pieces_and_at_a_line_start():
    data = _noisy_log()
    expected = data.index(b"\x1b[31mE   AssertionError")
    assert expected == first_error(_Bytes(data), 0, len(data), piece=1000)
    assert first_error(
        _Bytes(data), data.index(b"\n", expected) + 1, len(data), piece=7
    ) == data.index(b"FAILED")
    assert first_error(_Bytes(_noisy_log(error_at=0)), 0, len(data)) is None


@pytest.mark.django_db
def test_a_failed_step_page_names_its_first_error_line(viewer_client, store, settings):
    settings.SAUCI = {"STORE": store, "LOG_TAIL_BYTES": 16384}
    build = _step(store, _noisy_log())
    html = viewer_client.get(reverse("sauci:log", args=[build.id, "test"])).content.decode()
    data = _noisy_log()
    offset = data.index(b"\x1b[31mE   AssertionError")
    assert f'data-error-line="{ERROR_LINE}" data-error-offset="{offset}"' in html


@pytest.mark.django_db
def test_without_an_error_line_a_failed_step_opens_at_its_end(viewer_client, store):
    build = _step(store, _noisy_log(error_at=0))
    html = viewer_client.get(reverse("sauci:log", args=[build.id, "test"])).content.decode()
    assert "data-error-line" not in html and "data-open-tail" in html


@pytest.mark.django_db
def test_a_passed_step_opens_at_the_top_of_its_tail(viewer_client, store):
    build = _step(store, _noisy_log(), status=Status.PASSED, reason=None)
    html = viewer_client.get(reverse("sauci:log", args=[build.id, "test"])).content.decode()
    assert "data-error-line" not in html and "data-open-tail" not in html


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("docs at https://example.com/a?b=1&c=2.", ["https://example.com/a?b=1&amp;c=2"]),
        ("(see http://x.example/p)", ["http://x.example/p"]),
        ("javascript:alert(1)", []),
        ("JavaScript://%0aalert(1)", []),
        ("data:text/html,<b>x</b>", []),
        ("ftp://files.example/x", []),
        ("http://", []),
        ('https://x.example/"onmouseover="alert(1)', ["https://x.example/"]),
        ("https://x.example/'><img src=x>", ["https://x.example/"]),
    ],
)
def test_only_http_and_https_urls_become_links_and_nothing_escapes(text, links):
    """Hostile: log text chooses what looks like a URL."""
    html = linked(text)
    assert links == re.findall(r'<a href="([^"]*)" rel="nofollow noopener noreferrer">', html)
    without = re.sub(r'<a href="[^"]*" rel="nofollow noopener noreferrer">|</a>', "", html)
    assert "<" not in without and '"' not in without and "'" not in without


@pytest.mark.django_db
def test_times_show_the_absolute_time_on_hover(viewer_client, store):
    build = _step(store, b"x\n")
    html = viewer_client.get(reverse("sauci:builds")).content.decode()
    at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(store.get_build(build.id).queued_at))
    assert re.search(rf'<time datetime="[^"]+" title="{at}:\d\d UTC">just now</time>', html)


@pytest.mark.django_db
def test_a_skipped_steps_reason_is_not_shown_as_a_failure(viewer_client, store):
    build = _step(store, b"", status=Status.SKIPPED, reason="skipped: branch is not main")
    html = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert '<td class="reason skip">skipped: branch is not main</td>' in html


@in_browser
def test_a_failed_step_opens_at_its_first_error_before_the_loaded_tail(site, browser, settings):
    base, store, sessions = site
    settings.SAUCI = {"STORE": store, "LOG_TAIL_BYTES": 16384}
    build = _step(store, _noisy_log() + HOSTILE_URLS)
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(f"{base}builds/{build.id}/log/test")
    page.wait_for_url(f"**#L{ERROR_LINE}")
    line = page.locator(f"#L{ERROR_LINE}")
    assert "AssertionError" in line.inner_text()
    assert "first-error" in line.get_attribute("class")
    assert line.is_visible() and page.evaluate(
        f"() => {{ const r = document.getElementById('L{ERROR_LINE}').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }"
    )
    links = page.locator("#log-lines a[rel~=nofollow]")
    assert ["https://ci.example.com/x?a=1&b=2", "https://x.example/"] == [
        links.nth(i).get_attribute("href") for i in range(links.count())
    ]
    assert 0 == page.locator("#log-lines img, #log-lines script, a[href^=javascript]").count()
    links.first.hover()
    assert tab.pwned() is None and not tab.dialogs


@in_browser
def test_a_running_step_opens_at_its_tail(site, browser):
    base, store, sessions = site
    build = _step(store, _noisy_log(), status=Status.RUNNING, reason=None)
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(f"{base}builds/{build.id}/log/test")
    page.wait_for_function(
        "() => scrollY > 0 && innerHeight + scrollY >= document.documentElement.scrollHeight - 40"
    )


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (int(100.99 * 2**20), "101 MiB"),
        (101 * 2**20 - 1, "101 MiB"),
        (1536, "1.5 KiB"),
        (10, "10 bytes"),
        (3 * 2**30, "3 GiB"),
    ],
)
def test_sizes_print_without_a_trailing_point(n, text):
    from sauci.contrib.django.templatetags.sauci import size

    assert text == size(n)


def test_lines_that_only_look_like_errors_are_passed_over():
    """Hostile: a log can repeat near-misses ("Errors: 0") on every line; each
    word's next place is found once (linear), and none of them is the error."""
    data = b"cc -Werror x.c: Errors: 0, error_count=0\n" * 50_000 + b"TypeError: at last\n"
    assert data.index(b"TypeError") == first_error(_Bytes(data), 0, len(data), piece=1 << 16)
