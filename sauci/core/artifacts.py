"""Keep a step's artifacts: copy files matching globs out of the workspace."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.models import Artifact
from sauci.core.workspace_files import matching_files, split_glob

__all__ = ["collect_artifacts", "confined"]

log = get_logger(__name__)


def confined(root: Path, relative: str) -> Path | None:
    """``root / relative`` resolved, or None when it would leave ``root``."""
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        return None
    return target


def collect_artifacts(workspace: Path, globs: Sequence[str], dest: Path) -> list[Artifact]:
    """Copy regular files matching ``globs`` (relative to the workspace) into ``dest``.

    Symlinks are neither followed nor copied, and nothing outside the
    workspace is walked or read (:mod:`sauci.core.workspace_files`): a step
    must not be able to make SauCI copy, say, /etc/shadow, or walk the host.
    """
    patterns = []
    for pattern in globs:
        parts = split_glob(pattern)
        if parts is None:
            log.warning("artifact_glob_refused", pattern=pattern, reason="outside the workspace")
        else:
            patterns.append(parts)
    kept: list[Artifact] = []
    for match in matching_files(workspace, patterns):
        target = dest / match.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            with match.open() as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                st = os.fstat(src.fileno())
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        except OSError as exc:  # swapped for a symlink or a pipe meanwhile
            log.warning("artifact_refused", path=match.relative, reason=str(exc))
            target.unlink(missing_ok=True)
            continue
        kept.append(
            Artifact(path=match.relative, size=target.stat().st_size, sha256=digest.hexdigest())
        )
    return kept
