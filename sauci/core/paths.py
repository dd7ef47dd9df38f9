"""Where SauCI's files live on disk: the data directory, and one layout of a
build's files for the executor that writes them and the UI and CLI that read them.

    <logs>/<repo>/<build id>/<step>.log
    <artifacts>/<repo>/<build id>/<step>/<path>
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["artifact_dir", "default_data_dir", "log_path", "safe_name"]


def default_data_dir() -> Path:
    """``$SAUCI_DATA_DIR``, else ``$XDG_DATA_HOME/sauci``, else ``~/.local/share/sauci``."""
    explicit = os.environ.get("SAUCI_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "sauci"


def safe_name(name: str) -> str:
    """``name`` as one path component: anything but letters, digits, ``._-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "step"


def log_path(logs_dir: Path, repo: str, build_id: int, step: str) -> Path:
    return logs_dir / safe_name(repo) / str(build_id) / f"{safe_name(step)}.log"


def artifact_dir(artifacts_dir: Path, repo: str, build_id: int, step: str | None = None) -> Path:
    """A build's artifact directory, or one step's inside it."""
    build_dir = artifacts_dir / safe_name(repo) / str(build_id)
    return build_dir if step is None else build_dir / safe_name(step)
