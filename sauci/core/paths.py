"""Where SauCI's files live on disk: the data directory, and one layout of a
build's files for the executor that writes them and the UI and CLI that read them.

    <logs>/<repo>/<build id>-<build uuid>/<step>.log
    <artifacts>/<repo>/<build id>-<build uuid>/<step>/<path>

The uuid makes the directory the build's own: a store's numbering starts
again after a database reset or in another store, a uuid does not. A build
recorded before builds had one (uuid "") keeps the old ``<build id>/``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from sauci.exceptions import ConfigError

__all__ = [
    "artifact_dir",
    "build_dir_name",
    "default_data_dir",
    "log_path",
    "make_private_dir",
    "safe_name",
    "secure_data_dir",
]


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


def build_dir_name(build_id: int, uuid: str = "") -> str:
    """The name of a build's directory under logs/ and artifacts/."""
    return f"{build_id}-{safe_name(uuid)}" if uuid else str(build_id)


def log_path(logs_dir: Path, repo: str, build_id: int, step: str, *, uuid: str = "") -> Path:
    return logs_dir / safe_name(repo) / build_dir_name(build_id, uuid) / f"{safe_name(step)}.log"


def artifact_dir(
    artifacts_dir: Path, repo: str, build_id: int, step: str | None = None, *, uuid: str = ""
) -> Path:
    """A build's artifact directory, or one step's inside it."""
    build_dir = artifacts_dir / safe_name(repo) / build_dir_name(build_id, uuid)
    return build_dir if step is None else build_dir / safe_name(step)


def make_private_dir(path: Path, *, traversable: bool | None = False) -> Path:
    """Create ``path`` (and its parents) readable by this user alone: mode 0700.

    ``traversable`` gives others the right to pass through (0711, no listing):
    the namespace sandbox, started by root, binds a workspace as an
    unprivileged uid that must walk to it; everything else inside stays 0700.
    ``None`` keeps the right to pass through that others have (a command that
    only reads the store, while a server that needs it runs). A directory
    shared with others (sticky, like /tmp, or another user's) is refused
    rather than changed.
    """
    mode = 0o711 if traversable else 0o700  # None: created 0700
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot create the directory {path}: {exc.strerror}") from exc
    if st.st_mode & stat.S_ISVTX or st.st_uid != os.geteuid():
        raise ConfigError(
            f"{path} is shared with other users (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}); give SauCI a directory of its own"
        )
    current = stat.S_IMODE(st.st_mode)
    # None: others keep the right to pass through, if they had it.
    wanted = (current & 0o011) | 0o700 if traversable is None else mode
    if current != wanted:
        path.chmod(wanted)
    return path


def secure_data_dir(data_dir: Path, *, traversable: bool = False) -> None:
    """Make a server's data directory private: its directories 0700, the store's
    SQLite files 0600. With ``traversable`` (see :func:`make_private_dir`) the
    data dir, its ``workspaces`` and ``cache`` may be passed through, nothing else. An
    artifacts directory elsewhere (shared with workers) is the operator's."""
    make_private_dir(data_dir, traversable=traversable)
    make_private_dir(data_dir / "workspaces", traversable=traversable)
    # Steps run as another uid walk through cache/ to their pip/uv download cache.
    make_private_dir(data_dir / "cache", traversable=traversable)
    for name in ("logs", "spool", "mirrors", "artifacts"):
        make_private_dir(data_dir / name)
    for path in data_dir.glob("*.db*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)
