"""The pip/uv download cache a step may write: the host directory SauCI names
in the step's environment (``SAUCI_CACHE_DIR``), which isolating sandboxes
bind read-write at the same path.

SauCI's executor sets the variable itself and drops any value a pipeline
gives; the checks here are a second line: an existing real directory (no
symlink on the way), never ``/``, owned by SauCI or by the step's host uid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["CACHE_DIR_VARIABLE", "cache_bind"]

CACHE_DIR_VARIABLE = "SAUCI_CACHE_DIR"  # sauci.core._step_cache sets it


def cache_bind(env: Mapping[str, str], owners: tuple[int, ...] = ()) -> str | None:
    """The directory to bind read-write for the step, or None."""
    path = env.get(CACHE_DIR_VARIABLE)
    if not path or not os.path.isabs(path):
        return None
    if os.path.realpath(path) != os.path.normpath(path) or os.path.normpath(path) == "/":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isdir(path) or st.st_uid not in (os.geteuid(), *owners):
        return None
    return os.path.normpath(path)
