"""One ``__repr__`` for SauCI's attrs value objects.

attrs compiles a ``__repr__`` for every class it makes, about 0.16 ms each
at import: for the 16 classes each ``sauci run`` makes, 2.5 ms of a 100 ms
budget. The classes on that path say ``repr=False`` and use this one, which
writes what attrs would: ``Name(field=value, ...)``.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["value_repr"]


def value_repr(self: Any) -> str:
    cls = type(self)
    fields = ", ".join(f"{a.name}={getattr(self, a.name)!r}" for a in attrs.fields(cls) if a.repr)
    return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({fields})"
