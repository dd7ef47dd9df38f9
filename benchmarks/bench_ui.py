"""How fast the UI is with a big store: 100k builds, 1M steps, a 100 MB log.

Run: python benchmarks/bench_ui.py [--builds 100000] [--runs 30]

Prints, each beside a bare baseline measured in the same run:
- median server-side render time of the build list (first page and a deep
  page) and of a build page (through Django's full request stack), beside a
  trivial Django view;
- the log page of a 100 MB log: server time (first view, which counts the
  log's newlines, and later views) and, in headless Chromium, first
  contentful paint, beside the paint of a trivial page;
- the tests page of a build with 62,435 tests (the first page, a filtered
  one, a deep one) and one test's history: server time and first paint;
- the time from a line being written to a running step's log file until it is
  in the open page's DOM (server-sent events), beside a fetch() round trip.
Targets: 100 ms, 100 ms, 300 ms, 500 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sauci.testing.browser import CHROMIUM, launch_chromium  # noqa: E402 - after the path

REPO = "/srv/git/big-project.git"
STEP_NAMES = ["checkout", "lint", "typecheck", "unit", "integration", "docs", "build", "package",
              "e2e", "publish"]  # fmt: skip


def fill(db: Path, builds: int) -> None:
    """Bulk insert ``builds`` builds with 10 steps each, straight into the store's tables."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    rng = random.Random(1)
    now = time.time() - builds * 60
    statuses = ["passed"] * 8 + ["failed", "errored"]
    build_rows = []
    step_rows = []
    for i in range(1, builds + 1):
        queued = now + i * 60
        status = rng.choice(statuses)
        build_rows.append(
            (i, REPO if i % 10 else "/srv/git/other.git",
             "refs/heads/" + rng.choice(["main", "dev", "feature/x"]),
             f"{rng.getrandbits(160):040x}", rng.choice(["push", "webhook", "manual"]), status,
             None, 10, "{}", rng.choice(["Ann <ann@x>", "Bob <bob@x>"]), f"commit message {i}",
             "ann", "", queued, queued + 2, queued + 2 + rng.uniform(20, 300), "serve:x:1")
        )  # fmt: skip
        for pos, name in enumerate(STEP_NAMES):
            step_rows.append(
                (i, name, pos, "passed", None, None, 0, None, 1, 0,
                 json.dumps([STEP_NAMES[pos - 1]] if pos else []), queued + 2 + pos,
                 queued + 3 + pos, 1000, None)
            )  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO builds (id, repo, ref, sha, event, status, reason, priority, params,"
            " author, message, pusher, old_sha, queued_at, started_at, finished_at, claimed_by)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            build_rows,
        )
        conn.executemany(
            "INSERT INTO steps (build_id, name, position, status, reason, ended_by, exit_code,"
            " signal, attempt, allow_failure, needs, started_at, finished_at, log_bytes, log_path)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            step_rows,
        )
    conn.close()


def fill_tests(db: Path, build_id: int, count: int) -> None:
    """``count`` test results of one build (1 in 500 failed, with a message and output)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    rows = []
    for i in range(count):
        failed = i % 500 == 17
        rows.append(
            (build_id, "unit", f"test_case_{i:06d}", f"pkg.module{i % 300}.TestThing",
             "failed" if failed else ("skipped" if i % 97 == 0 else "passed"), 0.01 * (i % 50),
             "expected:<1> but was:<2>" if failed else "",
             "Traceback (most recent call last):\n  ...\nAssertionError\n" if failed else "", "")
        )  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO test_results (build_id, step, name, classname, status, duration,"
            " message, text, file) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
    conn.close()


def write_big_log(path: Path, size: int) -> None:
    line = (
        b"\x1b[32mINFO\x1b[0m 2026-01-01 12:00:00 worker: processing item with some detail text\n"
    )
    block = line * (1024 * 1024 // len(line))
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            fh.write(block)
            written += len(block)
    with open(f"{path}.ts", "w") as fh:
        for offset in range(0, size, 64 * 1024):
            fh.write(f"{offset} {time.time():.3f}\n")


def median_ms(fn, runs: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def configure_django(store) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "sauci.contrib.django",
        ],
        MIDDLEWARE=[
            "whitenoise.middleware.WhiteNoiseMiddleware",  # as in serve_ui
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        MESSAGE_STORAGE="django.contrib.messages.storage.cookie.CookieStorage",
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={},
        STATIC_URL="/static/",
        WHITENOISE_USE_FINDERS=True,
        SAUCI={"STORE": store, "PUBLIC": True},
    )
    django.setup()


def _trivial(request):
    from django.http import HttpResponse

    return HttpResponse("<!DOCTYPE html><title>ok</title><p>ok</p>")


def _urls():
    from django.urls import include, path

    return [path("trivial/", _trivial), path("ci/", include("sauci.contrib.django.urls"))]


def __getattr__(name: str):  # ROOT_URLCONF = this module; urlpatterns made lazily
    if name == "urlpatterns":
        return _urls()
    raise AttributeError(name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--log-mib", type=int, default=100)
    parser.add_argument("--tests", type=int, default=62_435)
    parser.add_argument(
        "--store", default="", help="with --only search: a PostgreSQL URL (an empty database)"
    )
    parser.add_argument(
        "--only", choices=["search", "charts"],
        help="search: the build list's text search alone; charts: the analytics charts' markup",
    )  # fmt: skip
    args = parser.parse_args()
    if args.only == "search":
        return search_numbers(args)
    if args.only == "charts":
        return chart_numbers(args)

    from sauci.core.models import Status, StepRun
    from sauci.storage import open_store

    tmp = Path(tempfile.mkdtemp(prefix="sauci-bench-ui-"))
    db = tmp / "sauci.db"
    store = open_store(f"sqlite:///{db}")
    t = time.perf_counter()
    fill(db, args.builds)
    print(
        f"filled {args.builds} builds, {args.builds * 10} steps in {time.perf_counter() - t:.1f} s"
    )

    log = tmp / "big.log"
    write_big_log(log, args.log_mib * 1024 * 1024)
    big_id = args.builds  # the newest build gets the big log
    store.save_step(StepRun(build_id=big_id, name="unit", position=3, status=Status.PASSED,
                            log_path=str(log), log_bytes=log.stat().st_size))  # fmt: skip
    # A failed step with the same 100 MiB log and no error line in it: its
    # page first looks for one in the last 16 tails (4 MiB).
    store.save_step(StepRun(build_id=big_id - 3, name="unit", position=3, status=Status.FAILED,
                            log_path=str(log), log_bytes=log.stat().st_size))  # fmt: skip
    live_log = tmp / "live.log"
    live_log.write_bytes(b"starting\n")
    store.update_build(big_id - 1, status=Status.RUNNING, finished_at=None)
    store.save_step(StepRun(build_id=big_id - 1, name="unit", position=3, status=Status.RUNNING,
                            log_path=str(live_log)))  # fmt: skip

    tests_id = big_id - 2  # a failed build with many tests
    store.update_build(tests_id, status=Status.FAILED)
    t = time.perf_counter()
    fill_tests(db, tests_id, args.tests)
    print(
        f"filled {args.tests} test results of build {tests_id} in {time.perf_counter() - t:.1f} s"
    )
    args.tests_id = tests_id

    configure_django(store)
    from django.test import Client

    client = Client()

    def get(url):
        def run():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return run

    from urllib.parse import quote

    rows = [
        ("trivial Django view (baseline)", median_ms(get("/trivial/"), args.runs), None),
        ("build list, first page",
         median_ms(get(f"/ci/builds/?repo={quote(REPO)}"), args.runs), 100),
        ("build list, page at ?before=50000",
         median_ms(get(f"/ci/builds/?repo={quote(REPO)}&before=50000"), args.runs), 100),
        ("build list, filtered status=failed",
         median_ms(get(f"/ci/builds/?repo={quote(REPO)}&status=failed"), args.runs), 100),
        ("build list, text search q=message 4242",
         median_ms(get(f"/ci/builds/?repo={quote(REPO)}&q=message+4242"), args.runs), 100),
        ("build list, newer page ?after=50000",
         median_ms(get(f"/ci/builds/?repo={quote(REPO)}&after=50000"), args.runs), 100),
        ("build page (10 steps)",
         median_ms(get(f"/ci/builds/{args.builds // 2}/"), args.runs), 100),
    ]  # fmt: skip
    tests_url = f"/ci/builds/{tests_id}/tests/"
    n = args.tests
    rows += [
        (f"tests page, {n} tests, first page", median_ms(get(tests_url), args.runs), 100),
        (f"tests page, {n} tests, status=failed",
         median_ms(get(tests_url + "?status=failed"), args.runs), 100),
        (f"tests page, {n} tests, name search",
         median_ms(get(tests_url + "?q=case_0312"), args.runs), 100),
        (f"tests page, {n} tests, last page",
         median_ms(get(tests_url + f"?page={-(-n // 100)}"), args.runs), 100),
        (f"build page of the {n}-test build",
         median_ms(get(f"/ci/builds/{tests_id}/"), args.runs), 100),
        ("analytics page of the repository",
         median_ms(get(f"/ci/analytics/?repo={quote(REPO)}"), args.runs), 100),
        ("one test's history (30 builds)",
         median_ms(get(f"/ci/tests/history/?repo={quote(REPO)}&classname=pkg.module17.TestThing"
                       "&name=test_case_000017"), args.runs), 100),
    ]  # fmt: skip
    log_url = f"/ci/builds/{big_id}/log/unit"
    t = time.perf_counter()
    get(log_url)()
    cold = (time.perf_counter() - t) * 1000
    rows.append((f"{args.log_mib} MiB log page, first view (counts lines)", cold, 300))
    rows.append(
        (f"{args.log_mib} MiB log page, later views", median_ms(get(log_url), args.runs), 300)
    )
    failed_url = f"/ci/builds/{big_id - 3}/log/unit"
    rows.append(
        (f"{args.log_mib} MiB failed log page (first-error scan)",
         median_ms(get(failed_url), args.runs), 300)
    )  # fmt: skip

    print(f"\n{'what':<48} {'median ms':>10} {'target':>8}")
    for what, ms, target in rows:
        print(f"{what:<48} {ms:>10.1f} {target or '':>8}")

    if not os.path.exists(CHROMIUM):
        print(f"\n{CHROMIUM} missing: browser measurements skipped")
        return 0
    browser_numbers(tmp, big_id, live_log, args)
    return 0


SEARCHES = [  # (what, q): a few matches, every build, half, a 2-character text, none
    ("q=message 4242 (11 builds)", "message 4242"),
    ("q=commit (every build)", "commit"),
    ("q=bob (half the builds, the author)", "bob"),
    ("q=42 (2 characters: no trigram, a scan)", "42"),
    ('q=NEAR("x (hostile, no match)', 'NEAR("x'),
]


def search_numbers(args) -> int:
    """The build list's free-text search, through the store's index (FTS5 on
    SQLite, migration 0006) and, in the same run, through the scan the store
    falls back to (what the other adapters do), beside a trivial view."""
    from urllib.parse import quote

    from sauci.storage import open_store

    tmp = Path(tempfile.mkdtemp(prefix="sauci-bench-search-"))
    db = tmp / "sauci.db"
    postgres = args.store.startswith("postgresql")
    store = open_store(args.store if postgres else f"sqlite:///{db}")
    t = time.perf_counter()
    fill_postgres(store, args.builds) if postgres else fill(db, args.builds)
    print(f"filled {args.builds} builds of {'PostgreSQL' if postgres else 'SQLite'}"
          f" in {time.perf_counter() - t:.1f} s")  # fmt: skip
    configure_django(store)
    from django.test import Client

    client = Client()

    def get(url):
        def run():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return run

    base = f"/ci/builds/?repo={quote(REPO)}"
    rows = [("trivial Django view (baseline)", median_ms(get("/trivial/"), args.runs), None),
            ("build list, first page, no search", median_ms(get(base), args.runs), None)]  # fmt: skip
    for what, q in SEARCHES:
        url = f"{base}&q={quote(q)}"
        store._search_index = not postgres
        indexed = median_ms(get(url), args.runs)
        store._search_index = False  # the scan, as before 0006
        with _without_trigram_indexes(store, postgres):
            scanned = median_ms(get(url), max(3, args.runs // 5))
        store._search_index = None
        rows.append((f"{what}: index / scan", (indexed, scanned), 100))
    rows.append(("analytics page of the repository",
                 median_ms(get(f"/ci/analytics/?repo={quote(REPO)}"), args.runs), 100))  # fmt: skip
    base_ms = rows[0][1]
    print(f"\n{'what':<52} {'median ms':>16} {'x baseline':>12} {'target':>7}")
    for what, ms, target in rows:
        first = ms[0] if isinstance(ms, tuple) else ms
        shown = f"{ms[0]:.1f} / {ms[1]:.1f}" if isinstance(ms, tuple) else f"{ms:.1f}"
        print(f"{what:<52} {shown:>16} {first / base_ms:>11.0f}x {target or '':>7}")
    return 0


def fill_postgres(store, builds: int) -> None:
    """``fill``'s builds (not their steps) in a PostgreSQL store, in one transaction."""
    rng = random.Random(1)
    now = time.time() - builds * 60
    rows = []
    for i in range(1, builds + 1):
        queued = now + i * 60
        rows.append({
            "id": i, "repo": REPO if i % 10 else "/srv/git/other.git",
            "ref": "refs/heads/" + rng.choice(["main", "dev", "feature/x"]),
            "sha": f"{rng.getrandbits(160):040x}", "event": rng.choice(["push", "manual"]),
            "status": rng.choice(["passed"] * 8 + ["failed", "errored"]),
            "author": rng.choice(["Ann <ann@x>", "Bob <bob@x>"]), "message": f"commit message {i}",
            "queued": queued, "started": queued + 2, "finished": queued + 2 + rng.uniform(20, 300),
        })  # fmt: skip
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO builds (id, repo, ref, sha, event, status, priority, params, author,"
            " message, pusher, old_sha, queued_at, started_at, finished_at, claimed_by)"
            " VALUES (:id, :repo, :ref, :sha, :event, :status, 10, '{}', :author, :message,"
            " 'ann', '', :queued, :started, :finished, 'serve:x:1')"), rows)  # fmt: skip
        conn.exec_driver_sql(f"SELECT setval('builds_id_seq', {builds})")
        conn.exec_driver_sql("ANALYZE builds")


class _without_trigram_indexes:
    """On PostgreSQL, the scan: the trigram indexes unused inside the block."""

    def __init__(self, store, postgres: bool) -> None:
        self.store, self.postgres = store, postgres

    def __enter__(self):
        if self.postgres:
            with self.store.engine.begin() as conn:
                for col in ("message", "author", "ref", "sha"):
                    conn.exec_driver_sql(f"ALTER INDEX ix_builds_search_{col} RENAME TO off_{col}")
                    conn.exec_driver_sql(f"UPDATE pg_index SET indisvalid = false"
                                         f" WHERE indexrelid = 'off_{col}'::regclass")  # fmt: skip

    def __exit__(self, *exc):
        if self.postgres:
            with self.store.engine.begin() as conn:
                for col in ("message", "author", "ref", "sha"):
                    conn.exec_driver_sql(f"UPDATE pg_index SET indisvalid = true"
                                         f" WHERE indexrelid = 'off_{col}'::regclass")  # fmt: skip
                    conn.exec_driver_sql(f"ALTER INDEX off_{col} RENAME TO ix_builds_search_{col}")


_LOOP_MARKS = (  # the chart points' markup as a template loop drew it before
    '{% for x, y, v in c.points %}<circle class="pt" cx="{{ x }}" cy="{{ y }}" r="2.5">'
    '<title>{{ v|floatformat:"-1" }}{{ c.unit }}</title></circle>{% endfor %}'
)


def chart_numbers(args) -> int:
    """The analytics page's nine line charts of 50 points (three branches):
    their points drawn by a template loop with floatformat, as before, and
    made in Python (``line_chart``'s ``marks``), in the same run."""
    configure_django(None)
    from django.template import Context, Template
    from django.template.loader import get_template

    from sauci.contrib.django.svg import line_chart

    source = (ROOT / "sauci/contrib/django/templates/sauci/_line_chart.html").read_text()
    loop = Template(source.replace("{{ c.marks }}", _LOOP_MARKS))
    marks = get_template("sauci/_line_chart.html")
    rng = random.Random(1)
    values = [[rng.uniform(20, 300) for _ in range(50)] for _ in range(9)]

    def draw(template, make):
        def run():
            for v in values:
                template.render(make({"c": line_chart(v), "label": "Build duration"}))

        return run

    trivial = Template("{{ label }}")
    rows = [
        ("nine empty renders (baseline)", median_ms(draw(trivial, Context), args.runs)),
        ("nine charts, points by a template loop", median_ms(draw(loop, Context), args.runs)),
        ("nine charts, points made in Python", median_ms(draw(marks, dict), args.runs)),
    ]
    print(f"{'what':<44} {'median ms':>10} {'x baseline':>11}")
    for what, ms in rows:
        print(f"{what:<44} {ms:>10.2f} {ms / rows[0][1]:>10.0f}x")
    return 0


def browser_numbers(tmp: Path, big_id: int, live_log: Path, args) -> None:
    import threading

    import waitress
    from django.core.wsgi import get_wsgi_application
    from playwright.sync_api import sync_playwright

    server = waitress.create_server(get_wsgi_application(), host="127.0.0.1", port=0,
                                    threads=8, send_bytes=1)  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"

    def fcp(page, url):
        page.goto(url, wait_until="commit")
        return page.evaluate(
            """() => new Promise(done => new PerformanceObserver((list) => {
                 for (const e of list.getEntries())
                   if (e.name === 'first-contentful-paint') done(e.startTime);
               }).observe({type: 'paint', buffered: true}))"""
        )

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        trivial = statistics.median(fcp(page, f"{base}/trivial/") for _ in range(5))
        paint = statistics.median(
            fcp(page, f"{base}/ci/builds/{big_id}/log/unit") for _ in range(5)
        )
        print(f"\n{'first contentful paint, trivial page (baseline)':<48} {trivial:>10.1f}")
        print(
            f"{f'first contentful paint, {args.log_mib} MiB log page':<48} {paint:>10.1f} {300:>8}"
        )
        tests_paint = statistics.median(
            fcp(page, f"{base}/ci/builds/{args.tests_id}/tests/") for _ in range(5)
        )
        what = f"first contentful paint, {args.tests} tests page"
        print(f"{what:<48} {tests_paint:>10.1f} {1000:>8}")

        page.goto(f"{base}/ci/builds/{big_id - 1}/log/unit")
        page.wait_for_timeout(500)  # the EventSource connects
        page.evaluate(
            """() => { window.seen = {}; new MutationObserver(() => {
                document.querySelectorAll('#log-lines .tx').forEach(el => {
                  const m = el.textContent.match(/^marker-(\\d+)$/);
                  if (m && !(m[1] in window.seen))
                    window.seen[m[1]] = performance.timeOrigin + performance.now();
                });
              }).observe(document.getElementById('log-lines'),
                         {childList: true, subtree: true}); }"""
        )
        delays = []
        for i in range(10):
            written = time.time() * 1000
            with open(live_log, "ab") as fh:
                fh.write(f"marker-{i}\n".encode())
            page.wait_for_function(
                "(i) => window.seen && window.seen[i] !== undefined", arg=str(i), timeout=5000
            )
            delays.append(page.evaluate(f"window.seen['{i}']") - written)
            page.wait_for_timeout(150)
        rtt = []
        for _ in range(10):
            rtt.append(page.evaluate(
                "async (u) => { const t = performance.now(); await fetch(u);"
                " return performance.now() - t; }",
                f"{base}/trivial/",
            ))  # fmt: skip
        print(
            f"{'fetch() round trip of trivial view (baseline)':<48} {statistics.median(rtt):>10.1f}"
        )
        mid = statistics.median(delays)
        print(f"{'new log line to open page (SSE), median':<48} {mid:>10.1f} {500:>8}")
        print(f"{'new log line to open page (SSE), max':<48} {max(delays):>10.1f} {500:>8}")
        browser.close()
    server.close()


if __name__ == "__main__":
    raise SystemExit(main())
