"""Parsed pipelines kept on disk, so that ``sauci run`` does not parse (and import
yaml for) a ``.sauci.yml`` it has read before.

An entry's name is a hash of everything the result depends on: the file's
bytes, ``max_timeout``, and the size and change time (ctime) of the modules
that parse and define pipelines, which change with an edit of the source
tree and with an install of another version alike. A changed file is a
new key; nothing is ever updated in place.

Entries are JSON, not pickle: reading one can only build the value classes
of :mod:`sauci.core.models`, through their constructors and validators. Any
entry that cannot be read is a miss; a write that fails is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import attrs

from sauci._gitfiles import sha256 as _sha256  # without loading OpenSSL
from sauci.core import models
from sauci.core.models import Pipeline

__all__ = ["get", "key", "put"]

FORMAT = 1  # bump when the encoding below changes
_MAX_ENTRIES = 200  # beyond this, the oldest entries are dropped when one is added
_code: str | None = None


def _code_fingerprint() -> str:
    """The stats of the modules that decide what a file parses to.

    Their change time (ctime) moves whenever a file is written, by an edit or
    by installing another version, and no installer or copy can set it back
    (unlike mtime), so SauCI's version need not be looked up: that took a
    scan of sys.path's directories at every start.
    """
    global _code
    if _code is None:
        here = os.path.dirname(__file__)
        names = sorted(n for n in os.listdir(here) if n.endswith(".py"))
        core = os.path.dirname(models.__file__)  # the value classes a pipeline is made of
        files = [
            *(os.path.join(here, n) for n in names),
            *(os.path.join(core, n) for n in ("models.py", "pipeline_parts.py")),
        ]
        stats = []
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            stats.append(f"{os.path.basename(path)}:{st.st_size}:{st.st_ctime_ns}")
        _code = f"{FORMAT}|{'|'.join(stats)}"
    return _code


def key(data: bytes, max_timeout: float | None, sandboxes: Collection[str] | None = None) -> str:
    """The cache key of parsing ``data``.

    Not the file's name: ``sauci run`` reads it from a new workspace every
    time. The name only appears in ``Pipeline.source`` (set again on a hit)
    and in problems, and a file with problems is never cached.
    """
    digest = _sha256(data)
    allowed = None if sandboxes is None else sorted(sandboxes)
    digest.update(f"\0{max_timeout!r}\0{allowed!r}\0{_code_fingerprint()}".encode())
    return digest.hexdigest()


def get(cache_dir: Path, key: str) -> Pipeline | None:
    """The cached pipeline, or None (missing, unreadable or from another format)."""
    try:
        with open(cache_dir / f"{key}.json", "rb") as fh:
            value = _decode(json.loads(fh.read()))
    except Exception:  # unreadable, another format, a validator said no: a miss, never a crash
        return None
    return value if isinstance(value, Pipeline) else None


def put(cache_dir: Path, key: str, pipeline: Pipeline) -> None:
    """Keep ``pipeline`` under ``key``; written atomically, failures ignored."""
    try:
        text = json.dumps(_encode(pipeline), separators=(",", ":"))
    except (TypeError, ValueError):  # a value this encoding does not know: not cached
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache_dir / f"{key}.json")
        _prune(cache_dir)
    except OSError:
        return


def _prune(cache_dir: Path) -> None:
    entries = [e for e in os.scandir(cache_dir) if e.name.endswith(".json")]
    if len(entries) <= _MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[: len(entries) - _MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


# -- encoding: JSON with tags for the value classes --------------------------
#
#   attrs instance  {"!": "Step", "f": {field: value, ...}}
#   dict            {"!": "", "f": {...}}
#   tuple, list     [...]  (read back as tuples: every sequence field is one)


def _encode(value: Any) -> Any:
    if value is None or type(value) in (str, bool, int, float):  # not an enum: it would
        return value  # come back as a plain str
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only string keys")
        return {"!": "", "f": {k: _encode(v) for k, v in value.items()}}
    cls = type(value)
    if attrs.has(cls) and getattr(models, cls.__name__, None) is cls:
        fields = {f.alias: _encode(getattr(value, f.name)) for f in attrs.fields(cls) if f.init}
        return {"!": cls.__name__, "f": fields}
    raise TypeError(f"cannot cache a {cls.__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        tag = value["!"]
        fields = {k: _decode(v) for k, v in value["f"].items()}
        if tag == "":
            return fields
        cls = getattr(models, tag)
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise TypeError(f"{tag!r} is not a value class")
        return cls(**fields)
    return value
