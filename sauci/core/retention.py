"""Retention: delete old builds' logs and artifacts from disk, by count or age.

Store records are kept (history, analytics); only the bulky files go. A log
whose file is gone is still readable from the store's chunks. A store that
serves logs from their files (the ``log_files`` capability of the embedded
SQLite store) is asked first to copy them in (``before_delete``); a build
whose logs it could not take keeps its files.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from sauci._logging import get_logger

__all__ = ["prune"]

log = get_logger(__name__)


def _builds(roots: list[Path]) -> dict[str, dict[str, list[Path]]]:
    """repo -> build directory name -> its directories (under logs/ and artifacts/)."""
    found: dict[str, dict[str, list[Path]]] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for repo in root.iterdir():
            if not repo.is_dir():
                continue
            for build in repo.iterdir():
                # <id> (before builds had a uuid) or <id>-<uuid>
                if build.is_dir() and build.name.split("-", 1)[0].isdigit():
                    found.setdefault(repo.name, {}).setdefault(build.name, []).append(build)
    return found


def _oldest_first(builds: dict[str, list[Path]]) -> list[tuple[float, int, str]]:
    """(last written, id, name) of each build, oldest first.

    Ordered by the directories' age, the id only breaking ties: after a
    database reset or a change of store, ids start again, so an old ``<id>/``
    or ``<id>-<uuid>/`` and a new ``<id>-<other uuid>/`` share a number and
    the number alone would prune the new builds first.
    """
    rows = []
    for name, paths in builds.items():
        when = max(p.stat().st_mtime for p in paths)
        rows.append((when, int(name.split("-", 1)[0]), name))
    return sorted(rows)


def prune(
    data_dir: Path,
    *,
    keep_builds: int | None = None,
    keep_days: float | None = None,
    now: float | None = None,
    before_delete: Callable[[int], object] | None = None,
    artifacts_dir: Path | None = None,
) -> list[Path]:
    """Delete the logs and artifacts of builds beyond the last ``keep_builds`` of
    each repository, or older than ``keep_days``; returns the directories deleted.

    ``before_delete(build_id)`` runs before a build's directories go (a store's
    ``absorb_log_files``); when it raises SauCIError, that build is kept whole.
    ``artifacts_dir`` defaults to ``data_dir/artifacts``.
    """
    from sauci.exceptions import SauCIError

    now = time.time() if now is None else now
    removed: list[Path] = []
    roots = [data_dir / "logs", artifacts_dir or data_dir / "artifacts"]
    for builds in _builds(roots).values():
        ordered = _oldest_first(builds)
        doomed = ordered[: max(0, len(ordered) - keep_builds)] if keep_builds is not None else []
        if keep_days is not None:
            cutoff = now - keep_days * 86400
            doomed += [row for row in ordered if row[0] < cutoff and row not in doomed]
        for _, build_id, name in sorted(doomed):
            if before_delete is not None:
                try:
                    before_delete(build_id)
                except SauCIError as exc:
                    log.warning("retention_kept_build", build=build_id, reason=str(exc))
                    continue
            for path in builds[name]:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    if removed:
        log.info("retention_pruned", directories=len(removed))
    return removed
