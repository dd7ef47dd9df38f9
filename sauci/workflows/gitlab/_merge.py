"""GitLab's deep merge, ``extends:`` and ``!reference`` tags.

GitLab merges configurations the same way everywhere (included files under
the main file, a job over the jobs it extends): mappings are merged key by
key, recursively; any other value (a list, a string) replaces the one
below it. ``!reference`` tags are resolved first, on the configuration as
written (after includes, before ``extends``), as GitLab does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sauci.workflows.gitlab._yaml import Map, Pos, Reference, Seq

__all__ = ["MAX_EXTENDS_DEPTH", "deep_merge", "resolve_extends", "resolve_references"]

MAX_EXTENDS_DEPTH = 11  # GitLab's limit on how deep extends may go
MAX_REFERENCE_DEPTH = 10

Report = Callable[[Pos | None, str], None]


def deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged onto ``base``: mappings key by key, anything else replaced."""
    if not (isinstance(base, Map) and isinstance(over, Map)):
        return over
    out = Map(over.pos)
    for key, value in base.items():
        out.put(key, value, base.where(key))
    for key, value in over.items():
        out.put(key, deep_merge(out[key], value) if key in out else value, over.where(key))
    return out


def resolve_references(config: Map, report: Report) -> Map:
    """``config`` with every ``!reference`` replaced by the value it points at."""

    def resolve(value: Any, depth: int) -> Any:
        if isinstance(value, Reference):
            if depth >= MAX_REFERENCE_DEPTH:
                report(value.pos, f"!reference tags nest more than {MAX_REFERENCE_DEPTH} levels")
                return None
            return resolve(_follow(config, value, report), depth + 1)
        if isinstance(value, Map):
            out = Map(value.pos)
            for key, item in value.items():
                out.put(key, resolve(item, depth), value.where(key))
            return out
        if isinstance(value, Seq):
            seq = Seq(value.pos)
            for index, item in enumerate(value):
                seq.add(resolve(item, depth), value.where(index))
            return seq
        return value

    result = resolve(config, 0)
    assert isinstance(result, Map)
    return result


def _follow(config: Map, ref: Reference, report: Report) -> Any:
    value: Any = config
    for index, name in enumerate(ref):
        if not isinstance(value, Map) or name not in value:
            path = ", ".join(ref[: index + 1])
            report(ref.where(index), f"!reference [{path}] points at nothing")
            return None
        value = value[name]
    return value


def resolve_extends(jobs: dict[str, Map], report: Report) -> dict[str, Map]:
    """Each job merged onto the jobs it ``extends`` (multi-level, in order)."""
    done: dict[str, Map] = {}

    def merged(name: str, chain: tuple[str, ...]) -> Map:
        if name in done:
            return done[name]
        job = jobs[name]
        parents = job.get("extends")
        if parents is None:
            done[name] = job
            return job
        where = job.where("extends")
        names = [parents] if isinstance(parents, str) else parents
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            report(where, "extends: expected a job name or a list of job names")
            done[name] = job
            return job
        base: Any = Map(job.pos)
        for parent in names:
            if parent in chain or parent == name:
                report(where, f"extends: {name!r} extends itself through {parent!r}")
                continue
            if parent not in jobs:
                report(where, f"extends: no job or hidden job named {parent!r}")
                continue
            if len(chain) >= MAX_EXTENDS_DEPTH:
                report(where, f"extends: nested more than {MAX_EXTENDS_DEPTH} levels")
                continue
            base = deep_merge(base, merged(parent, (*chain, name)))
        own = Map(job.pos)
        for key, value in job.items():
            if key != "extends":
                own.put(key, value, job.where(key))
        result = deep_merge(base, own)
        result.pos = job.pos
        done[name] = result
        return result

    return {name: merged(name, ()) for name in jobs}
