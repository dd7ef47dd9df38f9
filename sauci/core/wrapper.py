"""The base of the wrappers that change a few calls of an object and pass the rest through."""

from __future__ import annotations

from typing import Any

__all__ = ["Wrapper"]


class Wrapper:
    """Reads every attribute the subclass does not define from ``self.wrapped``.

    A subclass sets ``wrapped`` (an attrs field or in ``__init__``) and defines
    only the calls it changes: a store that gates claims, a runner that scales
    workers after each round.
    """

    wrapped: Any

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet (a copy being built): no endless recursion
            raise AttributeError(name)
        return getattr(self.wrapped, name)
