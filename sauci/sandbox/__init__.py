"""The Sandbox adapters (``local``, ``namespace``, ``docker``), each in its own
module so that ``import sauci`` pays for none but the local one, and
:func:`sweep`, which ends what a crashed server's steps left in their cgroups."""

from sauci.sandbox._proctree import sweep

__all__ = ["sweep"]
