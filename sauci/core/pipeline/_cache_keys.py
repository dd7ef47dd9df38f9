"""The ``cache:`` key of a step: ``{paths: [...], key: ..., restore_keys: [...],
skip_on_hit: false}``,
each problem at its file:line:col.

Paths are files or directories inside the workspace, or under the build's
HOME when written ``~/...``; they never climb out with ``..`` and are never
absolute. The key's expressions are checked by :mod:`sauci.core.cache_key`.
"""

from __future__ import annotations

import functools

from yaml.nodes import Node

from sauci.core.cache_key import key_problems
from sauci.core.pipeline._nodes import Checker, is_null
from sauci.core.pipeline._spec import path_problem
from sauci.core.step_parts import Cache

__all__ = ["CACHE_KEYS", "cache_path_problem", "read_cache"]

CACHE_KEYS = ("key", "paths", "restore_keys", "skip_on_hit")
MAX_PATHS = 32


def cache_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be cached, or None."""
    if any(c in path for c in "*?["):
        return "is a pattern; cache paths name files or directories"
    if path.startswith("~"):
        if path == "~" or not path.startswith("~/"):
            return "must be a path under the build's HOME such as '~/.cache/pip'"
        rest = path[2:]
        problem = path_problem(rest)
        return None if problem is None else problem.replace("workspace", "build's HOME")
    return path_problem(path)


def _path_fault(what: str, path: str, fault: str) -> str:
    return f"{what}: {path!r} {fault}"


def read_cache(chk: Checker, node: Node, what: str) -> Cache | None:
    """The step's Cache, or None once its problems are added."""
    mapping = chk.mapping(
        node, what, "a mapping with 'paths', 'key', 'restore_keys' and 'skip_on_hit'"
    )
    if mapping is None:
        return None
    entries, ok = chk.known_items(mapping, what, CACHE_KEYS)
    found: dict[str, object] = {}
    for name, _, value in entries:
        inner = f"{name!r} of {what}"
        if is_null(value):
            continue
        if name == "paths":
            paths = chk.texts(value, inner, "a path such as '.venv'")
            if paths is None:
                ok = False
                continue
            if len(paths) > MAX_PATHS:
                chk.add(value, f"{inner}: at most {MAX_PATHS} paths, got {len(paths)}")
                ok = False
            good = chk.all_valid(paths, cache_path_problem, functools.partial(_path_fault, inner))
            ok = ok and good
            found["paths"] = tuple(path for path, _ in paths)
        elif name == "key":
            key = chk.text(
                value, inner, "a key such as \"venv-${{ hashFiles('pyproject.toml') }}\""
            )
            if key is None:
                ok = False
                continue
            for problem in key_problems(key):
                chk.add(value, f"{inner}: {key!r} {problem}")
                ok = False
            found["key"] = key
        elif name == "skip_on_hit":
            skip = chk.boolean(value, inner)
            if skip is None:
                ok = False
                continue
            found["skip_on_hit"] = skip
        else:
            prefixes = chk.texts(value, inner, "a key prefix such as 'venv-'")
            if prefixes is None:
                ok = False
                continue
            for prefix, where in prefixes:
                for problem in key_problems(prefix, prefix=True):
                    chk.add(where, f"{inner}: {prefix!r} {problem}")
                    ok = False
            found["restore_keys"] = tuple(prefix for prefix, _ in prefixes)
    for required in ("paths", "key"):
        if required not in found and ok:
            chk.add(mapping, f"{what}: {required!r} is required")
            ok = False
    if not ok:
        return None
    if not found["paths"]:
        chk.add(mapping, f"{what}: 'paths' lists no path")
        return None
    return Cache(**found)  # type: ignore[arg-type]
