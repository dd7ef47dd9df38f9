"""A private directory beside a cache's destination, where an archive is
unpacked or a tree linked before its paths are renamed into place, and
GNU tar's extraction into it (:mod:`sauci.core.cache_archive`,
:mod:`sauci.core.cache_tree`)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["gnu_extract", "stage_beside"]


@contextlib.contextmanager
def stage_beside(place: Path, prefix: str) -> Iterator[Path | None]:
    """A new private directory named ``prefix``... in ``place``'s directory
    (a rename from there into ``place`` stays on its file system), removed
    with what is left in it on leaving; None when it cannot be made."""
    try:
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=place.parent))
    except OSError:
        yield None
        return
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def gnu_extract(
    tar: str, archive: Path, into: Path, *, listing: bool = False, umask: int = -1
) -> str | None:
    """Extract ``archive`` into ``into`` with GNU ``tar``, the files this
    process's with modes from ``umask`` (-1: its own): tar's list of the
    paths with ``listing``, else ""; None when tar failed."""
    done = subprocess.run(
        [
            tar,
            "-xvf" if listing else "-xf",
            str(archive),
            "-C",
            str(into),
            "--no-same-owner",
            "--no-same-permissions",
        ],
        capture_output=True,
        text=listing,
        timeout=600,
        check=False,
        umask=umask,
    )
    if done.returncode != 0:
        return None
    return done.stdout if listing else ""
