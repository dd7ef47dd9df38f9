"""Masking secrets in a stream of output that may split a secret across writes."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SecretMasker"]

MASK = b"***"
MIN_SECRET_LENGTH = 3


class SecretMasker:
    """Replaces each secret by ``***`` in output that comes in pieces.

    An output end that may be the beginning of a secret is kept in
    :attr:`held` until the next piece shows whether it is; :meth:`mask_end`
    masks what is held when the output ends. Secrets shorter than
    MIN_SECRET_LENGTH are left alone.
    """

    def __init__(self, secrets: Sequence[str | bytes]) -> None:
        values = {s.encode() if isinstance(s, str) else bytes(s) for s in secrets}
        values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(values, key=len, reverse=True)
        # Longest first, so that of two secrets starting at the same byte the
        # longer is masked; the same rule as masking the whole log at once.
        alternatives = b"|".join(re.escape(v) for v in self._secrets)
        self._pattern = re.compile(alternatives) if self._secrets else None
        self._splitter = re.compile(b"(" + alternatives + b")") if self._secrets else None
        self._anchors = [s[: min(8, len(s) - 1)] for s in self._secrets]
        self._keep = len(self._secrets[0]) - 1 if self._secrets else 0
        self.held = b""

    def __bool__(self) -> bool:
        """False when there is no secret to mask (output passes as it is)."""
        return self._pattern is not None

    def mask(self, data: bytes) -> list[bytes | memoryview]:
        """Mask what is sure now; hold back an output end that may start a secret.

        Returns the pieces to write. The common case (no secret anywhere)
        costs one C scan of ``data`` per secret, and a short look at its last
        ``len(secret) - 1`` bytes; it copies nothing.

        The result is the same as masking the whole log at once, scanning
        left to right and masking at each position the longest secret that
        starts there: a position is sure once the bytes after it are not
        the beginning of a secret longer than them (:meth:`_hold_from`).
        """
        held, keep, n = self.held, self._keep, len(data)
        if n >= keep:
            # A secret starting in ``held`` ends within held + data[:keep]; no
            # position in ``held`` can still be unsure after ``keep`` more bytes.
            edge = held + data[:keep] if held else b""
            if not any(s in data or s in edge for s in self._secrets):
                cut = self._hold_from(data, 0)
                self.held = data[cut:]
                body = data if cut == n else memoryview(data)[:cut]
                return [held, body] if held else [body]
        buf = held + data
        # Mask at C speed: split() finds the same non-overlapping matches,
        # left to right, as masking the whole log at once would. A match
        # starting before the first unsure position ``cut`` is sure; when it
        # reaches past ``cut`` the unsure position was inside it, so look for
        # the next one after it and take the matches before that too.
        assert self._splitter is not None
        parts = self._splitter.split(buf)  # [text, match, text, ..., match, text]
        cut = self._hold_from(buf, 0)
        while True:
            j = len(parts) - 1
            match_end = len(buf) - len(parts[j])
            while j >= 2 and match_end - len(parts[j - 1]) >= cut:
                match_end -= len(parts[j - 1]) + len(parts[j - 2])
                j -= 2
            if j < 2 or match_end <= cut:
                break
            cut = self._hold_from(buf, match_end)
        self.held = buf[cut:]
        if j < 2:  # no match starts before cut
            return [memoryview(buf)[:cut]] if cut else []
        return [MASK.join(parts[0:j:2]), MASK, memoryview(buf)[match_end:cut]]

    def _hold_from(self, buf: bytes, start: int, shortest: int = 1) -> int:
        """The first position ``p >= start`` where ``buf[p:]`` (at least
        ``shortest`` bytes) is the beginning of a secret longer than it:
        where the output may be in the middle of a secret. ``len(buf)`` if none.

        Only the last ``len(secret) - 1`` bytes are looked at, from the
        places holding the secret's first few bytes (its anchor: so that
        output made of one repeated byte costs one search, not one
        comparison per byte), and in the last few bytes from its first.
        """
        n = best = len(buf)
        view = None
        for secret, anchor in zip(self._secrets, self._anchors, strict=True):
            lo, hi = max(start, n - len(secret) + 1), min(best, n - shortest + 1)
            if lo >= hi:
                continue
            found = -1
            end = min(n, hi + len(anchor) - 1)  # an anchor found in [lo, end) starts before hi
            p = buf.find(anchor, lo, end)
            while p != -1:
                if view is None:
                    view = memoryview(buf)  # compared in place: no copy per candidate
                if secret.startswith(view[p:]):
                    found = p
                    break
                p = buf.find(anchor, p + 1, end)
            if found == -1:  # fewer bytes left than the anchor has
                first = anchor[:1]
                p = buf.find(first, max(lo, n - len(anchor) + 1), hi)
                while p != -1:
                    if secret.startswith(buf[p:]):
                        found = p
                        break
                    p = buf.find(first, p + 1, hi)
            if found != -1:
                best = found
        return best

    def mask_end(self, held: bytes) -> list[bytes | memoryview]:
        """Mask the held-back end of a finished log.

        Whole secrets in it are masked as usual; an end that is the
        beginning of a secret, at least MIN_SECRET_LENGTH bytes of it, is
        masked too: the step stopped (or was stopped) in the middle of
        printing a secret, and half a secret is still a leak.
        """
        assert self._pattern is not None
        out: list[bytes | memoryview] = []
        pos, n = 0, len(held)
        while pos < n:
            tail = self._hold_from(held, pos, MIN_SECRET_LENGTH)
            match = self._pattern.search(held, pos)
            if match is not None and match.start() <= tail:
                out += (held[pos : match.start()], MASK)
                pos = match.end()
                continue
            out.append(held[pos:tail])
            if tail < n:
                out.append(MASK)
            break
        return out
