"""Keep a step's artifacts: copy files matching globs out of the workspace."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.models import Artifact
from sauci.core.workspace_files import matching_files, split_glob

__all__ = ["DEFAULT_ARTIFACT_LIMIT", "collect_artifacts", "confined"]

log = get_logger(__name__)

# One step's artifacts together (the setting ``artifact_limit``): a step's
# sparse or hard-linked file costs its workspace nothing, and its copy would
# cost the server's disk its whole size.
DEFAULT_ARTIFACT_LIMIT = 4 * 1024 * 1024 * 1024


def confined(root: Path, relative: str) -> Path | None:
    """``root / relative`` resolved, or None when it would leave ``root``."""
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        return None
    return target


def collect_artifacts(
    workspace: Path,
    globs: Sequence[str],
    dest: Path,
    *,
    limit: int | None = None,
    dropped: list[str] | None = None,
    misnamed: list[str] | None = None,
) -> list[Artifact]:
    """Copy regular files matching ``globs`` (relative to the workspace) into ``dest``.

    Symlinks are neither followed nor copied, and nothing outside the
    workspace is walked or read (:mod:`sauci.core.workspace_files`): a step
    must not be able to make SauCI copy, say, /etc/shadow, or walk the host.

    ``limit`` caps the bytes copied, all files together: a file that would
    pass it is not kept, and its path is added to ``dropped``. The step's
    workspace is no measure: a sparse file (``truncate -s 1T``) or a
    thousand hard links to one file cost it nothing, and the copies would
    cost the server's disk their whole size.

    A file whose name is not UTF-8 (names are bytes; no store keeps such a
    text) is not kept either: its name, with ``\\xff`` for each such byte,
    is added to ``misnamed``.
    """
    patterns = []
    for pattern in globs:
        parts = split_glob(pattern)
        if parts is None:
            log.warning("artifact_glob_refused", pattern=pattern, reason="outside the workspace")
        else:
            patterns.append(parts)
    kept: list[Artifact] = []
    left = limit
    for match in matching_files(workspace, patterns):
        try:
            match.relative.encode("utf-8")
        except UnicodeEncodeError:
            shown = match.relative.encode("utf-8", "surrogateescape").decode(
                "utf-8", "backslashreplace"
            )
            log.warning("artifact_refused", path=shown, reason="the name is not UTF-8")
            if misnamed is not None:
                misnamed.append(shown)
            continue
        target = dest / match.relative
        digest = hashlib.sha256()
        copied = 0
        try:
            with match.open() as src:
                st = os.fstat(src.fileno())
                if left is not None and st.st_size > left:
                    raise _OverLimit
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        copied += len(chunk)
                        if left is not None and copied > left:  # still growing
                            raise _OverLimit
                        digest.update(chunk)
                        out.write(chunk)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        except _OverLimit:
            log.warning("artifact_refused", path=match.relative, reason="artifact limit")
            target.unlink(missing_ok=True)
            if dropped is not None:
                dropped.append(match.relative)
            continue
        except OSError as exc:  # swapped for a symlink or a pipe meanwhile
            log.warning("artifact_refused", path=match.relative, reason=str(exc))
            target.unlink(missing_ok=True)
            continue
        if left is not None:
            left -= copied
        kept.append(Artifact(path=match.relative, size=copied, sha256=digest.hexdigest()))
    return kept


class _OverLimit(Exception):
    """A file that would take the artifacts past their limit."""
