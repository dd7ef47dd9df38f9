"""A store is a context manager that closes itself: ``with open_store(url) as store:``."""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """``__enter__`` returns the store; ``__exit__`` calls its ``close()``."""

    def close(self) -> None:
        raise NotImplementedError  # pragma: no cover - every store defines it

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
