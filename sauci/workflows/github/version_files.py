"""actions/setup-python's ``python-version-file``, read from the workspace as the
action reads it: ``.python-version`` (its first line), ``.tool-versions``
(the ``python`` line) or ``pyproject.toml`` (``project.requires-python``, else
Poetry's ``python`` dependency).

The name comes from a pushed workflow and is read when the plan is made (on
a server too), so only a regular file inside the workspace is read, at most
64 KiB of it.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

__all__ = ["version_file"]

_MAX_BYTES = 64 * 1024


def version_file(workspace: Path, name: str) -> list[str] | str:
    """The versions ``name`` asks for, or a problem naming what is wrong."""
    shown = f"python-version-file {name!r}"
    root = os.path.realpath(workspace)
    path = os.path.realpath(os.path.join(root, name.lstrip("/")))
    if not path.startswith(root + os.sep):
        return f"{shown} is outside the repository"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        return f"cannot read {shown}: {exc.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return f"{shown} is not a regular file"
        data = os.read(fd, _MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_BYTES:
        return f"{shown} is larger than {_MAX_BYTES} bytes"
    text = data.decode("utf-8", errors="replace")
    base = os.path.basename(path)
    if base == "pyproject.toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return f"{shown}: {exc}"
        project = doc.get("project")
        poetry = doc.get("tool", {}).get("poetry", {}).get("dependencies", {})
        spec = (project or {}).get("requires-python") or poetry.get("python")
        if not isinstance(spec, str) or not spec.strip():
            return f"{shown} has no project.requires-python"
        return [spec.strip()]
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if base == ".tool-versions":
        for line in lines:
            tool, *versions = line.split()
            if tool == "python" and versions:
                return versions[:1]
        return f"{shown} has no python line"
    if not lines:
        return f"{shown} is empty"
    return lines[:1]
