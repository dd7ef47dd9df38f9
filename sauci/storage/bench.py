"""One workload on several stores, side by side (``sauci bench stores``).

Each store gets N builds x M steps x K KiB of log (written in 64 KiB
chunks, as the log sink sends them), then the UI's queries: a list page,
one build with its steps, a log tail, and the analytics aggregate.

The workload never lands in a store that holds data: a Redis or stream URL
without ``prefix=`` gets a key prefix of its own (removed afterwards), and a
store that holds builds, events, repositories or workers is refused before
anything is written.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from sauci.core.models import BuildRequest, Status, StepRun
from sauci.exceptions import ConfigError
from sauci.typing import Store

__all__ = ["bench_stores", "bench_url", "format_table", "write_svg"]

_CHUNK = 64 * 1024
_QUERIES = 50


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _storage_bytes(store: Store, url: str) -> int | None:
    """Bytes the data takes: files for embedded stores, the server's own
    figure for PostgreSQL (database size) and Redis (used memory)."""
    path = getattr(store, "path", None)
    if isinstance(path, str | os.PathLike) and str(path) != ":memory:":
        files = [Path(f"{path}{s}") for s in ("", "-wal", "-shm", ".wal")]
        return sum(f.stat().st_size for f in files if f.exists())
    engine = getattr(store, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        import sqlalchemy as sa

        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
            )
    client = getattr(store, "_r", None) or getattr(getattr(store, "_log", None), "_r", None)
    if client is not None:
        return int(client.info("memory")["used_memory"])
    return None


def _timed(call: Callable[[], Any], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _bench_one(
    store: Store, *, builds: int, steps: int, log_kib: int, tick: Callable[[], None]
) -> dict[str, Any]:
    rng = random.Random(1)
    size = log_kib * 1024
    writes = 0
    started = time.perf_counter()
    ids = []
    for i in range(builds):
        b = store.create_build(
            BuildRequest(repo=f"repo{i % 5}", ref="refs/heads/main", sha="a" * 40)
        )
        store.claim_build("bench")
        writes += 2
        t0 = 1_700_000_000.0 + i
        for s in range(steps):
            name = f"step{s}"
            # Incompressible and different per step, so no store can dedupe it.
            log = rng.randbytes(size)
            store.save_step(StepRun(build_id=b.id, name=name, position=s, status=Status.RUNNING))
            for off in range(0, len(log), _CHUNK):
                store.append_log(b.id, name, log[off : off + _CHUNK])
                writes += 1
            store.save_step(StepRun(build_id=b.id, name=name, position=s, status=Status.PASSED))
            writes += 2
        status = Status.FAILED if i % 7 == 0 else Status.PASSED
        store.update_build(b.id, status=status, started_at=t0, finished_at=t0 + 10 + i % 30)
        writes += 1
        ids.append(b.id)
        tick()
    write_seconds = time.perf_counter() - started
    rng = random.Random(2)
    queries = {
        "list": lambda: store.list_builds(limit=50),
        "build": lambda: (lambda b: (store.get_build(b), store.list_steps(b)))(rng.choice(ids)),
        "log_tail": lambda: store.read_log(rng.choice(ids), "step0", max(0, size - 4096)),
        "stats": lambda: store.build_stats(repo="repo1"),
    }
    row: dict[str, Any] = {"writes": writes, "writes_per_s": writes / write_seconds}
    for name, call in queries.items():
        times = _timed(call, _QUERIES)
        row[f"{name}_p50_ms"] = _p(times, 50)
        row[f"{name}_p95_ms"] = _p(times, 95)
    return row


_NAMESPACED = ("redis://", "rediss://", "stream+redis://", "stream+kafka://")


def bench_url(url: str) -> str:
    """``url`` with a key prefix of the benchmark's own where the back end
    has namespaces (Redis keys, stream names) and the URL names none."""
    if not url.startswith(_NAMESPACED) or "prefix=" in url:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}prefix=sauci-bench-{uuid.uuid4().hex[:12]}"


def _refuse_data(store: Store, url: str) -> None:
    held = [
        kind
        for kind, rows in (
            ("builds", store.list_builds(limit=1)),
            ("events", store.list_events(limit=1)),
            ("repositories", store.list_registered_repos()),
            ("workers", store.list_workers()),
        )
        if rows
    ]
    if held:
        raise ConfigError(
            f"{url} holds {', '.join(held)}: `sauci bench stores` writes thousands of "
            "builds, so it measures only an empty store (a new file or database, or a "
            "Redis URL without prefix=, which gets a prefix of its own)"
        )


def _drop_namespace(store: Store, url: str) -> None:
    """Remove the keys of a prefix the benchmark chose (Redis back ends)."""
    if url.startswith("stream+kafka://") or "prefix=sauci-bench-" not in url:
        return
    client = getattr(store, "_r", None) or getattr(getattr(store, "_log", None), "_r", None)
    prefix = url.split("prefix=", 1)[1].split("&", 1)[0]
    if client is not None and hasattr(client, "scan_iter"):
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


def bench_stores(
    urls: Sequence[str],
    *,
    builds: int = 200,
    steps: int = 5,
    log_kib: int = 64,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the workload on a new store per URL; one result dict per URL:
    writes/s, query p50/p95 in ms, storage bytes and this process's resident
    memory growth (server memory is not included). Raises ConfigError for a
    store that holds data, before writing to any."""
    from sauci.storage import open_store

    results = []
    urls = [bench_url(u) for u in urls]
    for url in urls:  # every store checked before the first is written to
        store = open_store(url)
        try:
            _refuse_data(store, url)
        finally:
            store.close()
    for url in urls:
        rss = _rss()
        store = open_store(url)
        done = 0

        def tick(url: str = url) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(url, done, builds)

        try:
            row: dict[str, Any] = {"store": url.split(":", 1)[0], "url": url}
            row |= _bench_one(store, builds=builds, steps=steps, log_kib=log_kib, tick=tick)
            row["storage_bytes"] = _storage_bytes(store, url)
            row["rss_delta_bytes"] = _rss() - rss
            _drop_namespace(store, url)
        finally:
            store.close()
        results.append(row)
    return results


_LATENCIES = (("list", "list"), ("build", "build"), ("log_tail", "tail"), ("stats", "stats"))
_COLUMNS = (
    ("store", "store", "{}"),
    ("writes_per_s", "writes/s", "{:.0f}"),
    *(
        (f"{key}_{q}_ms", f"{title} {q}", "{:.2f}")
        for key, title in _LATENCIES
        for q in ("p50", "p95")
    ),
    ("storage_bytes", "storage MiB", "{:.1f}"),
    ("rss_delta_bytes", "RSS +MiB", "{:.1f}"),
)


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A plain-text table (times in ms) for the terminal and docs."""

    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if key.endswith("_bytes"):
            value = value / 2**20
        return fmt.format(value)

    rows = [[title for _, title, _ in _COLUMNS]]
    rows += [[cell(r, k, f) for k, _, f in _COLUMNS] for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_svg(results: Sequence[dict[str, Any]], path: str | Path) -> None:
    """A bar chart: writes/s, and p95 ms of each query, one bar per store."""
    panels = [("writes/s (higher is better)", "writes_per_s")] + [
        (f"{q} p95 ms (lower is better)", f"{q}_p95_ms")
        for q in ("list", "build", "log_tail", "stats")
    ]
    bar, gap, label_w, width = 18, 6, 150, 420
    y = 10
    parts = []
    for title, key in panels:
        parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{escape(title)}</text>')
        y += 24
        top = max((r[key] for r in results), default=1) or 1
        for r in results:
            w = max(1.0, r[key] / top * width)
            parts.append(f'<text x="10" y="{y + 13}">{escape(r["store"])}</text>')
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" fill="#4a7ab8"/>'
            )
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{r[key]:.3g}</text>')
            y += bar + gap
        y += 10
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 80}" height="{y}"'
        f' font-family="sans-serif" font-size="12">\n' + "\n".join(parts) + "\n</svg>\n"
    )
    Path(path).write_text(svg)
