"""What a GitHub runner reads for a job's steps: ``hashFiles`` over the workspace,
and the ``GITHUB_ENV``/``GITHUB_OUTPUT`` file format.

Standard library only: the job driver (jobdriver.py) carries this file's
source into the sandbox.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["hash_files", "parse_env_file"]


def hash_files(workspace: str, globs: Any) -> str:
    """GitHub's ``hashFiles``: SHA-256 over the SHA-256 of each matching file, '' for none.

    Several patterns add up; one starting with ``!`` takes its matches out.
    As on GitHub, only regular files inside the workspace count: a pattern
    reaching out (``../``, an absolute path, a symbolic link) matches nothing there.
    """
    import glob
    import hashlib

    root = os.path.realpath(workspace)
    names: set[str] = set()
    excluded: set[str] = set()
    for pattern in (str(p) for p in globs):
        into = excluded if pattern.startswith("!") else names
        pattern = pattern[1:] if pattern.startswith("!") else pattern
        into.update(glob.glob(os.path.join(root, pattern), recursive=True))
    total = hashlib.sha256()
    found = False
    for name in sorted(names - excluded):
        real = os.path.realpath(name)
        if real != name or not real.startswith(root + os.sep) or not os.path.isfile(real):
            continue  # a link, or outside the workspace
        digest = hashlib.sha256()
        with open(real, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        total.update(digest.digest())
        found = True
    return total.hexdigest() if found else ""


def parse_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines and ``NAME<<DELIMITER`` blocks, as GitHub reads its files."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                block.append(lines[i])
                i += 1
            i += 1
            values[name.strip()] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value
    return values
