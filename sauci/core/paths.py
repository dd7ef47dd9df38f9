"""Where a build's files live on disk: one layout for the executor that writes
them and for the UI and CLI that read them.

    <logs>/<repo>/<build id>/<step>.log
    <artifacts>/<repo>/<build id>/<step>/<path>
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["artifact_dir", "log_path", "safe_name"]


def safe_name(name: str) -> str:
    """``name`` as one path component: anything but letters, digits, ``._-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "step"


def log_path(logs_dir: Path, repo: str, build_id: int, step: str) -> Path:
    return logs_dir / safe_name(repo) / str(build_id) / f"{safe_name(step)}.log"


def artifact_dir(artifacts_dir: Path, repo: str, build_id: int, step: str | None = None) -> Path:
    """A build's artifact directory, or one step's inside it."""
    build_dir = artifacts_dir / safe_name(repo) / str(build_id)
    return build_dir if step is None else build_dir / safe_name(step)
