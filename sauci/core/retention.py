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


def _builds(roots: list[Path]) -> dict[str, dict[int, list[Path]]]:
    """repo -> build id -> its directories (under logs/ and artifacts/)."""
    found: dict[str, dict[int, list[Path]]] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for repo in root.iterdir():
            if not repo.is_dir():
                continue
            for build in repo.iterdir():
                # <id> (before builds had a uuid) or <id>-<uuid>
                number = build.name.split("-", 1)[0]
                if build.is_dir() and number.isdigit():
                    found.setdefault(repo.name, {}).setdefault(int(number), []).append(build)
    return found


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
        ids = sorted(builds)
        doomed = set(ids[: max(0, len(ids) - keep_builds)]) if keep_builds is not None else set()
        if keep_days is not None:
            cutoff = now - keep_days * 86400
            doomed.update(i for i in ids if max(p.stat().st_mtime for p in builds[i]) < cutoff)
        for build_id in sorted(doomed):
            if before_delete is not None:
                try:
                    before_delete(build_id)
                except SauCIError as exc:
                    log.warning("retention_kept_build", build=build_id, reason=str(exc))
                    continue
            for path in builds[build_id]:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    if removed:
        log.info("retention_pruned", directories=len(removed))
    return removed
