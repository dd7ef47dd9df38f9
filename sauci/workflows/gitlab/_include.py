"""``include: local``: files of the repository merged under the main file.

A pushed ``.gitlab-ci.yml`` is untrusted, so an include is read only from a
regular file inside the repository: a path that climbs out (``../``), a
symbolic link that points out, a FIFO or a device is a problem; a glob
never walks through a symbolic link. A leading
``/`` means the repository root, as in GitLab, never the server's root.
Other kinds of include (remote, project, template, component) are problems
naming the kind.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sauci.workflows.gitlab._merge import Report, deep_merge
from sauci.workflows.gitlab._yaml import MAX_BYTES, Map, Pos, Seq, YamlProblem, load_text

__all__ = ["MAX_INCLUDED_BYTES", "MAX_INCLUDES", "expand_includes", "read_regular"]

MAX_INCLUDES = 150  # GitLab's default limit
MAX_INCLUDED_BYTES = 8 * 1024 * 1024  # all included files together
_UNSUPPORTED = ("remote", "project", "template", "component", "artifact", "file")


def expand_includes(root: Path, config: Map, report: Report) -> Map:
    """``config`` with its ``include:`` files (and theirs) merged under it."""
    seen: set[str] = set()
    return _expand(root, config, report, seen, [MAX_INCLUDED_BYTES])


def _expand(root: Path, config: Map, report: Report, seen: set[str], left: list[int]) -> Map:
    if "include" not in config:
        return config
    entries = config["include"]
    where = config.where("include")
    items: list[tuple[Any, Pos]]
    if isinstance(entries, Seq):
        items = [(item, entries.where(i)) for i, item in enumerate(entries)]
    else:
        items = [(entries, where)]
    base: Any = Map(config.pos)
    for item, pos in items:
        for path, at in _local_paths(item, pos, report):
            for found in _glob(root, path, at, report):
                name = found.relative_to(root).as_posix()
                if name in seen:
                    continue
                seen.add(name)
                if len(seen) > MAX_INCLUDES:
                    report(at, f"include: more than {MAX_INCLUDES} files")
                    return config
                included = _read(root, found, name, at, report, left)
                if isinstance(included, Map):
                    base = deep_merge(base, _expand(root, included, report, seen, left))
                elif included is not None:
                    report(Pos(name, 1, 1), "an included file must be a mapping of jobs")
    own = Map(config.pos)
    for key, value in config.items():
        if key != "include":
            own.put(key, value, config.where(key))
    merged = deep_merge(base, own)
    assert isinstance(merged, Map)
    return merged


def _local_paths(item: Any, pos: Pos, report: Report) -> list[tuple[str, Pos]]:
    if isinstance(item, str):
        if item.startswith(("http://", "https://")):
            report(
                pos, "include: remote files are not supported; copy the file into the repository"
            )
            return []
        return [(item, pos)]
    if isinstance(item, Map):
        for kind in _UNSUPPORTED:
            if kind in item:
                report(
                    item.where(kind),
                    f"include: {kind} is not supported (SauCI reads only files of the "
                    "repository: use include: local)",
                )
                return []
        local = item.get("local")
        extra = sorted(set(item) - {"local", "rules", "inputs"})
        if "rules" in item or "inputs" in item or extra:
            key = "rules" if "rules" in item else "inputs" if "inputs" in item else extra[0]
            report(item.where(key), f"include: {key} is not supported")
            return []
        if isinstance(local, str) and local:
            return [(local, item.where("local"))]
    report(pos, "include: expected a path or {local: path}")
    return []


def _glob(root: Path, path: str, at: Pos, report: Report) -> list[Path]:
    relative = path.lstrip("/")
    parts = Path(relative).parts
    if not relative or ".." in parts:
        report(at, f"include: {path!r} is outside the repository")
        return []
    if any(c in relative for c in "*?["):
        from sauci.core.workspace_files import matching_files, split_glob

        # Never through a symlinked directory: pathlib's glob follows one
        # named by a literal or `*` component, so a committed `link -> /`
        # and `link/**/*.yml` had the server walk the host's file system
        # (and name what it found there in its problems). A symlinked
        # file is listed, and read_regular reads it only inside the root.
        pattern = split_glob(relative)
        patterns = [pattern] if pattern else []
        matches = matching_files(root, patterns, directories=False, links=True)
        found = [root / m.relative for m in matches if m.relative.endswith((".yml", ".yaml"))]
        if not found:
            report(at, f"include: no file matches {path!r}")
        return found
    return [root / relative]


def read_regular(root: Path, path: Path) -> str | None:
    """The text of ``path``, only if it is a regular UTF-8 file inside ``root``."""
    base = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([base, real]) != base:
        raise _Refused("is a symbolic link out of the repository")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Refused(f"cannot be read: {exc.strerror}") from None
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise _Refused("is not a regular file")
        data = file.read(MAX_BYTES + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Refused("is not UTF-8 text") from None


class _Refused(Exception):
    """A file an include or the pipeline may not read (the message says why)."""


def _read(root: Path, path: Path, name: str, at: Pos, report: Report, left: list[int]) -> Any:
    try:
        text = read_regular(root, path)
    except _Refused as exc:
        report(at, f"include: {name!r} {exc}")
        return None
    if text is None:
        report(at, f"include: no file {name!r} in the repository")
        return None
    left[0] -= len(text)
    if left[0] < 0:
        # 150 files of 1 MiB is 10 million values: minutes of the server's
        # CPU and gigabytes of its memory at every build of such a commit.
        report(
            at, f"include: {name!r} takes the included files past {MAX_INCLUDED_BYTES >> 20} MiB"
        )
        return None
    try:
        return load_text(text, name)
    except YamlProblem as problem:
        report(problem.pos, problem.message)
    return None
