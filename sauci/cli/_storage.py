"""Store commands: ``store copy`` between back ends, ``store rebuild`` of a
stream store's view, ``bench stores`` to compare them."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sauci.cli._context import settings_from, style_from

__all__ = ["cmd_bench", "cmd_store"]


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _rebuild(url: str) -> int:
    """Replay a stream store's log into a new view, reading past the holes a
    broker left (and recording that they are known, so views started later
    read past them too); prints what remains."""
    from sauci.exceptions import ConfigError

    if not url.startswith("stream+"):
        raise ConfigError(
            f"{url or 'the SQLite store'} is not a stream store: only a stream store "
            "(--store stream+redis://... or stream+kafka://...) has views to rebuild"
        )
    from sauci.storage.stream import StreamStore

    store = StreamStore.from_url(url, accept_gaps=True, follow=False)
    try:
        recorded = store.accept_gaps_read()
        builds = store.list_builds(limit=10**9)
        print(f"rebuilt the view of stream {store.stream} from what remains")
        print(f"  entries read   {store.applied_entries:>8}")
        print(f"  builds         {len(builds):>8}")
        for gap in store.gaps:
            print(f"  lost           {gap}")
        if recorded:
            print(f"recorded {recorded} hole(s) as known: restart `sauci serve` and its workers")
        else:
            print("no hole in the log")
    finally:
        store.close()
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from sauci.exceptions import SauCIError, exit_code
    from sauci.storage import open_store
    from sauci.storage.copy import copy_store

    settings = settings_from(args)
    if args.store_command == "rebuild":
        return _rebuild(settings.store)
    src = open_store(args.source)
    dst = open_store(args.target)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rcopying {_bar(done, total)}", end="", file=sys.stderr, flush=True)

    try:
        report = copy_store(src, dst, progress=progress, merge=args.merge)
    except SauCIError as exc:  # 2 for a destination that holds builds, 3 for a store failing
        print(f"\nsauci: copy failed: {exc}", file=sys.stderr)
        return exit_code(exc)
    finally:
        src.close()
        dst.close()
    if tty:
        print(file=sys.stderr)
    print(
        f"copied {report.copied_builds} builds in {report.seconds:.1f}s"
        + (f" ({report.resumed_after} already there, completed)" if report.resumed_after else "")
    )
    for kind, count in sorted(report.counts.items()):
        print(f"  {kind:<14} {count:>8}  sha256 {report.checksums.get(kind, '-')[:16]}")
    print("verified: counts and checksums match")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sauci.storage.bench import bench_stores, format_table, write_svg

    style_from(args)
    settings_from(args)
    urls = list(args.url or [])
    if not urls:
        # Embedded back ends that need no server, each in a fresh temporary place.
        tmp = Path(tempfile.mkdtemp(prefix="sauci-bench-"))
        urls = ["memory://", f"sqlite:///{tmp / 'bench.db'}"]
        try:
            import duckdb  # noqa: F401

            urls.append(f"duckdb:///{tmp / 'bench.duckdb'}")
        except ImportError:
            pass
    tty = sys.stderr.isatty()

    def progress(url: str, done: int, total: int) -> None:
        if tty:
            print(f"\r{url[:40]:<40} {_bar(done, total)}", end="", file=sys.stderr, flush=True)

    results = bench_stores(
        urls, builds=args.builds, steps=args.steps, log_kib=args.log_kib, progress=progress
    )
    if tty:
        print(file=sys.stderr)
    print(format_table(results))
    if args.svg:
        write_svg(results, args.svg)
        print(f"chart: {args.svg}")
    return 0
