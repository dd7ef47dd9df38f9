"""SauCI's own library, read-only, in a step's container when the step asks
with ``SAUCI_LIBRARY`` in its environment (the GitHub job driver of a
``container:`` job sets it: it imports SauCI's expression language inside
the job's image).

The ``sauci`` package and attrs (which its errors use) are mounted at their
host paths under the directory that holds ``sauci`` (so the path the
front end wrote into the job is right inside too); nothing else of the
host's Python is, so the image's own ``python3`` (3.10 or later) runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attr
import attrs

__all__ = ["LIBRARY_ENV", "library_binds"]

LIBRARY_ENV = "SAUCI_LIBRARY"


def library_binds(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Docker binds of SauCI's package and attrs, read-only; none unless asked."""
    if not env.get(LIBRARY_ENV):
        return {}
    package = Path(__file__).resolve().parents[1]
    root = package.parent
    binds = {str(package): {"bind": str(root / "sauci"), "mode": "ro"}}
    for module in (attr, attrs):
        source = Path(module.__file__ or "").resolve().parent
        binds[str(source)] = {"bind": str(root / source.name), "mode": "ro"}
    return binds
