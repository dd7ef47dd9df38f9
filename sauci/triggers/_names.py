"""What a store can keep of a pushed name: git and file systems take bytes and
any length, SQLite and PostgreSQL take UTF-8 text (no lone surrogates), and
PostgreSQL's index of builds by ref takes rows up to 2,704 bytes."""

from __future__ import annotations

__all__ = ["MAX_REF_BYTES", "ref_problem", "shown", "utf8_text", "valid_text"]

# The longest ref name SauCI builds, in UTF-8 bytes. git sets no limit, and
# PostgreSQL refuses an index row past 2,704 bytes (builds are indexed by ref).
MAX_REF_BYTES = 1024


def ref_problem(ref: str) -> str | None:
    """Why no store can keep ``ref`` (a ref name from git or a forge), or None.

    git takes any bytes but a few in a ref name, and no length limit: a name
    that is not UTF-8 (read as lone surrogates) is refused by SQLite and
    PostgreSQL, and a long one by PostgreSQL's index of builds by ref.
    """
    try:
        size = len(ref.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not UTF-8"
    if size > MAX_REF_BYTES:
        return f"is longer than {MAX_REF_BYTES} bytes"
    return None


def shown(text: str, limit: int = 80) -> str:
    """``text`` for a message: bytes that are not UTF-8 as ``\\xff``, cut at ``limit``."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no byte was read as (JSON's "\\ud800")
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "..."


def utf8_text(text: str) -> str:
    """``text`` read from bytes with surrogateescape, its bytes that are not UTF-8 as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def valid_text(text: str) -> str:
    """``text`` as every store keeps it: each lone surrogate (JSON's ``"\\udcff"``)
    and each NUL (PostgreSQL refuses it in text) replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
