"""Keep a step's artifacts: copy files matching globs out of the workspace."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.models import Artifact

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

    Symlinks and matches that resolve outside the workspace are not followed:
    a step must not be able to make SauCI copy, say, /etc/shadow.
    """
    root = workspace.resolve()
    kept: dict[str, Artifact] = {}
    for pattern in globs:
        for match in sorted(root.glob(pattern)):
            candidates = (
                [match] if match.is_file() else sorted(p for p in match.rglob("*") if p.is_file())
            )
            for path in candidates:
                if path.is_symlink() or confined(root, str(path.relative_to(root))) is None:
                    log.warning(
                        "artifact_refused", path=str(path), reason="outside workspace or symlink"
                    )
                    continue
                rel = path.relative_to(root).as_posix()
                if rel in kept:
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with path.open("rb") as src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                shutil.copystat(path, target)
                kept[rel] = Artifact(
                    path=rel, size=target.stat().st_size, sha256=digest.hexdigest()
                )
    return list(kept.values())
