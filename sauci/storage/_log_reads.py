"""``read_log`` as every store answers it, written once: the range check and
the empty read in :class:`LogReads`, and the cut of a range out of the chunks
that overlap it in :func:`slice_chunks` (the SQL and Redis stores keep a log
as chunks, each starting where the one before ends)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LogReads", "slice_chunks"]


class LogReads:
    """A store's ``read_log``: a negative ``offset`` or ``limit`` is a
    ValueError and ``limit=0`` reads nothing, in every store alike; the store
    itself reads the range in ``_read_log``."""

    def read_log(
        self, build_id: int, step: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError(f"offset and limit must be >= 0, not {offset} and {limit}")
        if limit == 0:
            return b""
        return self._read_log(build_id, step, offset, limit)

    def _read_log(self, build_id: int, step: str, offset: int, limit: int | None) -> bytes:
        """The bytes from ``offset``, at most ``limit`` (None: to the end) of them,
        for a range already checked."""
        raise NotImplementedError  # pragma: no cover - every store defines it


def slice_chunks(
    first_offset: int, chunks: Iterable[bytes], offset: int, limit: int | None
) -> bytes:
    """Bytes ``offset`` to ``offset + limit`` of a log (None: to its end), out
    of the consecutive chunks that overlap them, the first starting at
    ``first_offset``."""
    data = b"".join(chunks)
    start = offset - first_offset
    return data[start:] if limit is None else data[start : start + limit]
