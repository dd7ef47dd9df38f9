"""A step cache's key as written (``venv-${{ hashFiles('**/pyproject.toml') }}``)
checked when the pipeline is read and filled in just before the step runs.

Two expressions are understood: ``hashFiles('glob', ...)``, the sha256 of the
contents of the workspace files the globs match (sorted by path, symlinks
never followed, nothing outside the workspace), and ``matrix.NAME``, the
step's matrix value. Anything else is a validation error.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from sauci.core.workspace_files import matching_files, split_glob

__all__ = ["MAX_HASHED", "MAX_KEY", "CacheKeyError", "hash_files", "key_problems", "render_key"]

MAX_KEY = 200  # a key names a file: room for ".tar" within 255 bytes
# What one key's hashFiles reads, all files together. Read by the server from
# files an earlier step may have made: a sparse `truncate -s 16T` costs that
# step nothing and would keep a server thread hashing zeros for hours.
MAX_HASHED = 2 * 1024**3
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_HASH_FILES = re.compile(r"hashFiles\((.*)\)", re.S)
_ARGUMENT = re.compile(r"\s*(?:'([^']*)'|\"([^\"]*)\")\s*(?:,|$)")
_MATRIX = re.compile(r"matrix\.([A-Za-z_][A-Za-z0-9_-]*)")
# Letters, digits and a few separators: a key names a file in the cache store.
_KEY_TEXT = re.compile(r"[A-Za-z0-9._+=@,-]*")


class CacheKeyError(ValueError):
    """A key that cannot be filled in (an unknown matrix variable, a bad glob)."""


def _arguments(text: str) -> list[str] | None:
    """The quoted strings of ``hashFiles(...)``; None when they are not that."""
    found: list[str] = []
    pos = 0
    while pos < len(text):
        match = _ARGUMENT.match(text, pos)
        if match is None or match.end() == pos:
            return None
        found.append(match.group(1) if match.group(1) is not None else match.group(2))
        pos = match.end()
    return found or None


def _parts(template: str) -> list[tuple[str, str]]:
    """``template`` as ("text", ...) and ("expr", ...) pieces."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _EXPRESSION.finditer(template):
        pieces.append(("text", template[pos : match.start()]))
        pieces.append(("expr", match.group(1).strip()))
        pos = match.end()
    pieces.append(("text", template[pos:]))
    return pieces


def _text_problem(text: str) -> str | None:
    if "${{" in text or "}}" in text:
        return "has an unclosed '${{' or a stray '}}'"
    if not _KEY_TEXT.fullmatch(text):
        return "may hold only letters, digits and . _ - + = @ , outside ${{ ... }}"
    return None


def key_problems(template: str, *, prefix: bool = False) -> list[str]:
    """What is wrong with a key (or, with ``prefix``, a restore key) as written."""
    if not template.strip():
        return ["is empty"]
    if len(template) > MAX_KEY:
        return [f"is longer than {MAX_KEY} characters"]
    problems: list[str] = []
    for kind, text in _parts(template):
        if kind == "text":
            problem = _text_problem(text)
            if problem:
                problems.append(problem)
            continue
        if prefix:
            problems.append("is a prefix of keys; it cannot hold ${{ ... }}")
            continue
        if _MATRIX.fullmatch(text):
            continue
        call = _HASH_FILES.fullmatch(text)
        if call is None:
            problems.append(
                f"has the expression {text!r}; a cache key understands "
                "hashFiles('glob', ...) and matrix.NAME"
            )
            continue
        globs = _arguments(call.group(1))
        if globs is None:
            problems.append(f"{text!r}: hashFiles takes quoted globs such as 'requirements*.txt'")
            continue
        for glob in globs:
            if split_glob(glob) is None:
                problems.append(f"hashFiles({glob!r}) must stay inside the workspace")
    return problems


def hash_files(workspace: Path, globs: list[str]) -> str:
    """sha256 (hex) over the path and contents of every matched regular file,
    in sorted order; the hash of nothing when no file matches."""
    patterns = []
    for glob in globs:
        parts = split_glob(glob)
        if parts is None:
            raise CacheKeyError(f"hashFiles({glob!r}) must stay inside the workspace")
        patterns.append(parts)
    digest = hashlib.sha256()
    left = MAX_HASHED
    for match in matching_files(workspace, patterns, directories=False):
        try:
            with match.open() as fh:
                inner = hashlib.sha256()
                # The size first (a sparse file is refused at once), then what is read.
                if os.fstat(fh.fileno()).st_size > left:
                    raise _too_much(globs, match.relative)
                while chunk := fh.read(1 << 20):
                    left -= len(chunk)
                    if left < 0:
                        raise _too_much(globs, match.relative)
                    inner.update(chunk)
        except OSError:
            continue  # gone or swapped for a link meanwhile: not hashed
        digest.update(match.relative.encode() + b"\0" + inner.digest())
    return digest.hexdigest()


def _too_much(globs: list[str], relative: str) -> CacheKeyError:
    return CacheKeyError(
        f"hashFiles({', '.join(map(repr, globs))}): the files matched hold more than "
        f"{MAX_HASHED >> 30} GiB ({relative} among them)"
    )


def render_key(template: str, workspace: Path, matrix: Mapping[str, str] | None = None) -> str:
    """The key with every expression filled in; CacheKeyError when one cannot be."""
    problems = key_problems(template)
    if problems:
        raise CacheKeyError(f"cache key {template!r} {problems[0]}")
    out: list[str] = []
    for kind, text in _parts(template):
        if kind == "text":
            out.append(text)
            continue
        variable = _MATRIX.fullmatch(text)
        if variable is not None:
            name = variable.group(1)
            if not matrix or name not in matrix:
                raise CacheKeyError(f"cache key {template!r}: the step has no matrix.{name}")
            out.append(re.sub(r"[^A-Za-z0-9._+=@,-]", "_", matrix[name]))
            continue
        call = _HASH_FILES.fullmatch(text)
        assert call is not None  # key_problems allows nothing else
        out.append(hash_files(workspace, _arguments(call.group(1)) or []))
    return "".join(out)
