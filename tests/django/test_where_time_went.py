"""Where the time went: the build's timeline (queue, setup, each step's wait
and run) and the step graph drawn in layers, its edges clear of every node,
checked on the geometry and in a real Chromium on the drawn SVG.
"""

from __future__ import annotations

import random
import re
import time

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.contrib.django.svg import NODE_H, NODE_W, dag_layout
from sauci.contrib.django.timeline import timeline_layout
from sauci.core.models import Build, BuildRequest, Status, StepRun

Tab, in_browser, SCRIPT = monitoring_tests.Tab, monitoring_tests.in_browser, monitoring_tests.SCRIPT
# The live-server site over a MemoryStore and the Chromium of the monitoring tests.
site = monitoring_tests.site
browser = monitoring_tests.browser


def _steps(needs: dict[str, tuple[str, ...]]) -> list[StepRun]:
    return [
        StepRun(build_id=1, name=n, position=i, status=Status.PASSED, needs=deps)
        for i, (n, deps) in enumerate(needs.items())
    ]


def _points(path: str, samples: int = 24):
    """Points along an SVG path of M, C and L commands."""
    tokens = re.findall(r"[MCL]|-?[\d.]+", path)
    pos = (0.0, 0.0)
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        if cmd == "M":
            pos = (float(tokens[i + 1]), float(tokens[i + 2]))
            i += 3
        elif cmd == "L":
            end = (float(tokens[i + 1]), float(tokens[i + 2]))
            for k in range(samples + 1):
                t = k / samples
                yield (pos[0] + (end[0] - pos[0]) * t, pos[1] + (end[1] - pos[1]) * t)
            pos = end
            i += 3
        else:
            c1, c2, end = ((float(tokens[i + j]), float(tokens[i + j + 1])) for j in (1, 3, 5))
            for k in range(samples + 1):
                t = k / samples
                u = 1 - t
                yield (
                    u**3 * pos[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t**3 * end[0],
                    u**3 * pos[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t**3 * end[1],
                )
            pos = end
            i += 7


def _crossings(layout) -> list[tuple[str, tuple[float, float]]]:
    hits = []
    for path in layout["edges"]:
        for x, y in _points(path):
            for n in layout["nodes"]:
                if n["x"] + 1 < x < n["x"] + NODE_W - 1 and n["y"] + 1 < y < n["y"] + NODE_H - 1:
                    hits.append((n["step"].name, (x, y)))
    return hits


def test_a_long_edge_runs_around_the_nodes_it_passes():
    # lint -> build -> test -> deploy, and lint -> deploy across two columns
    layout = dag_layout(
        _steps({"lint": (), "build": ("lint",), "test": ("build",), "deploy": ("test", "lint")})
    )
    assert 4 == len(layout["edges"])
    assert [] == _crossings(layout)
    rows = {n["step"].name: n["y"] for n in layout["nodes"]}
    assert rows["build"] == rows["test"]  # the long edge took a slot of its own


@pytest.mark.parametrize("seed", range(12))
def test_no_edge_crosses_a_node_in_random_graphs(seed):
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(rng.randint(4, 14))]
    needs = {
        n: tuple(rng.sample(names[:i], k=min(i, rng.randint(0, 3)))) for i, n in enumerate(names)
    }
    layout = dag_layout(_steps(needs))
    assert [] == _crossings(layout)
    assert sum(len(d) for d in needs.values()) == len(layout["edges"])


def test_the_timeline_splits_queue_setup_wait_and_run():
    build = Build(
        id=7, repo="r", ref="refs/heads/main", status=Status.PASSED,
        queued_at=1000.0, started_at=1010.0, finished_at=1060.0,
    )  # fmt: skip
    steps = [
        StepRun(build_id=7, name="a", status=Status.PASSED, started_at=1015.0, finished_at=1030.0),
        StepRun(build_id=7, name="b", status=Status.FAILED, needs=("a",), started_at=1035.0,
                finished_at=1060.0),
    ]  # fmt: skip
    tl = timeline_layout(build, steps, now=2000.0)
    got = [[(b["kind"], b["seconds"]) for b in r["bars"]] for r in tl["rows"]]
    assert [
        [("queue", 10.0), ("setup", 5.0)],
        [("run st-passed", 15.0)],
        [("wait", 5.0), ("run st-failed", 25.0)],
    ] == got
    bars = [b for r in tl["rows"] for b in r["bars"]]
    assert min(b["x"] for b in bars) == tl["label_w"]  # the queue starts the axis
    assert max(b["x"] + b["w"] for b in bars) == pytest.approx(tl["label_w"] + 560, abs=0.2)


def test_a_build_still_queued_has_no_timeline():
    build = Build(id=1, repo="r", ref="refs/heads/main", queued_at=5.0)
    assert timeline_layout(build, [], now=10.0) is None


def _build(store, names=("checkout", "lint", "unit", "deploy")):
    build = store.create_build(BuildRequest(repo="/srv/git/app.git", ref="refs/heads/main"))
    now = time.time()
    store.update_build(build.id, status=Status.FAILED, started_at=now - 100, finished_at=now)
    needs = {names[0]: (), names[1]: (names[0],), names[2]: (names[1],)}
    needs[names[3]] = (names[2], names[0])
    for i, (name, deps) in enumerate(needs.items()):
        store.save_step(
            StepRun(
                build_id=build.id, name=name, position=i, needs=deps,
                status=Status.FAILED if i == 2 else Status.PASSED,
                started_at=now - 95 + i * 20, finished_at=now - 80 + i * 20,
            )
        )  # fmt: skip
    return build


@pytest.mark.django_db
def test_the_build_page_draws_the_timeline_with_escaped_names(viewer_client, store):
    """Hostile: step names come from the pushed pipeline."""
    build = _build(store, names=("checkout", f"lint{SCRIPT}", "unit", "deploy"))
    html = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "Where the time went" in html
    # setup, 4 runs, 3 waits (no queue: the test's build started before it was queued)
    assert 1 + 4 + 3 == html.count('<rect class="bar ')
    assert "<script>window" not in html
    assert "lint&lt;script&gt;window.__pwned" in html


@in_browser
def test_in_chromium_the_graph_edges_miss_every_node_and_the_timeline_shows(site, browser):
    base, store, sessions = site
    build = _build(store)
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(f"{base}builds/{build.id}/")
    hits = page.evaluate(
        """() => {
          const boxes = [...document.querySelectorAll('svg.dag g.node rect')]
            .map(r => ({x: r.x.baseVal.value, y: r.y.baseVal.value,
                        w: r.width.baseVal.value, h: r.height.baseVal.value}));
          const hits = [];
          for (const p of document.querySelectorAll('svg.dag path.edge')) {
            const n = p.getTotalLength();
            for (let l = 0; l <= n; l += 2) {
              const pt = p.getPointAtLength(l);
              for (const b of boxes)
                if (pt.x > b.x + 1 && pt.x < b.x + b.w - 1 && pt.y > b.y + 1 && pt.y < b.y + b.h - 1)
                  hits.push([pt.x, pt.y]);
            }
          }
          return hits;
        }"""
    )
    assert [] == hits
    assert 4 == page.locator("svg.dag path.edge").count()  # deploy's need of checkout is long
    timeline = page.locator("svg.timeline")
    assert timeline.is_visible()
    assert 8 == timeline.locator("rect.bar").count()  # setup, 4 runs, 3 waits
    assert "unit: failed, running" in timeline.locator("rect.bar.st-failed title").text_content()
