"""upload-artifact and download-artifact inside the job driver (standard library only).

An upload writes an index, ``.sauci-gha/<job>/artifacts/<name>.json``: the
artifact's name, its root (the least common ancestor of the paths searched,
as @actions/artifact computes it) and its files, relative to the workspace.
SauCI keeps those files and the index as the step's artifacts. A download
reads the indexes of the artifacts SauCI copied into the step's workspace
from the jobs it needs (``Step.download_artifacts``) and lays the files out
as actions/download-artifact v4 does: one artifact by ``name`` into
``path``; else every artifact whose name matches ``pattern``, each into
``path/<name>``, or all into ``path`` with ``merge-multiple``.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

__all__ = [
    "artifact_step",
    "download_artifacts",
    "entry_outputs",
    "upload_index",
    "write_entry_outputs",
]

_MAGIC = re.compile(r"[*?\[]")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)[:80] or "_"


def _search_path(pattern: str) -> str:
    """The literal directory a glob searches from (the path itself when it has no glob)."""
    parts = pattern.strip("/").split("/")
    literal = []
    for part in parts:
        if _MAGIC.search(part):
            break
        literal.append(part)
    return "/".join(literal) or "."


def _inside(workspace: str, relative: str) -> bool:
    root = os.path.realpath(workspace)
    target = os.path.realpath(os.path.join(workspace, relative))
    return target == root or target.startswith(root + os.sep)


def upload_index(
    workspace: str, job: str, name: str, paths: list[str], hidden: bool = False
) -> tuple[str, list[str]]:
    """Write the index of artifact ``name`` (``paths``: globs, ``!`` excludes);
    returns the index's path and the files listed (relative to ``workspace``)."""
    include = [p for p in paths if not p.startswith("!")]
    exclude = [p[1:] for p in paths if p.startswith("!")]
    found: set[str] = set()
    for pattern in include:
        if os.path.isabs(pattern) or not _inside(workspace, _search_path(pattern)):
            continue  # SauCI keeps files of the workspace only
        base = pattern.rstrip("/")
        hits = glob.glob(base, root_dir=workspace, recursive=True, include_hidden=hidden)
        for hit in hits:
            full = os.path.join(workspace, hit)
            if os.path.isdir(full) and not os.path.islink(full):
                for sub in glob.glob("**", root_dir=full, recursive=True, include_hidden=hidden):
                    if os.path.isfile(os.path.join(full, sub)):
                        found.add(os.path.normpath(os.path.join(hit, sub)))
            elif os.path.isfile(full) and not os.path.islink(full):
                found.add(os.path.normpath(hit))
    files = sorted(f for f in found if not any(fnmatch.fnmatch(f, x) for x in exclude))
    searched = [os.path.normpath(_search_path(p)) for p in include]
    if len(searched) == 1 and files == [searched[0]]:
        root = os.path.dirname(searched[0])  # one file: stored by its own name
    elif len(searched) > 1:
        root = os.path.commonpath(searched)
    else:
        root = searched[0] if searched else ""
    if root and os.path.isfile(os.path.join(workspace, root)):
        root = os.path.dirname(root)
    folder = os.path.join(workspace, ".sauci-gha", _safe(job), "artifacts")
    os.makedirs(folder, exist_ok=True)
    index = os.path.join(folder, _safe(name) + ".json")
    with open(index, "w", encoding="utf-8") as fh:
        json.dump({"name": name, "root": "" if root == "." else root, "files": files}, fh)
    return index, files


def _indexes(inbox: str) -> list[tuple[str, dict[str, Any]]]:
    """(the folder a job's kept artifacts were copied to, index) for every upload found."""
    found = []
    for path in sorted(
        glob.glob(os.path.join(inbox, "*", ".sauci-gha", "*", "artifacts", "*.json"))
    ):
        folder = path.split(os.sep + ".sauci-gha" + os.sep)[0]
        try:
            with open(path, encoding="utf-8") as fh:
                index = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(index, dict) and isinstance(index.get("files"), list):
            found.append((folder, index))
    return found


def download_artifacts(
    workspace: str, inbox: str, name: str, pattern: str, merge: bool, path: str
) -> tuple[str, list[str]]:
    """Lay out the artifacts found in ``inbox``; returns the download path and the
    names downloaded. ValueError (GitHub's message) when ``name`` is not there."""
    dest = os.path.join(workspace, path or ".")
    if not _inside(workspace, path or "."):
        raise ValueError(f"download path {path!r} is outside the workspace")
    chosen = [
        (folder, index)
        for folder, index in _indexes(inbox)
        if (
            index.get("name") == name
            if name
            else fnmatch.fnmatchcase(str(index.get("name")), pattern or "*")
        )
    ]
    if name and not chosen:
        raise ValueError(f"Artifact not found for name: {name}")
    for folder, index in chosen:
        root = str(index.get("root") or "")
        target = dest if (name or merge) else os.path.join(dest, _safe(str(index["name"])))
        for file in index["files"]:
            source = os.path.join(folder, file)
            relative = os.path.relpath(file, root) if root else file
            if relative.startswith("..") or not os.path.isfile(source):
                continue
            out = os.path.join(target, relative)
            if not _inside(workspace, os.path.relpath(out, workspace)):
                continue
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copyfile(source, out)
    return os.path.realpath(dest), sorted({str(i["name"]) for _f, i in chosen})


def artifact_step(
    step: dict[str, Any],
    fill: Callable[[str], str],
    workspace: str,
    job: str,
    inbox: str,
    output: str,
) -> int:
    """Run an upload or download step of the job driver; its exit code."""
    try:
        if step["kind"] == "upload":
            paths = [fill(p) for p in step["paths"]]
            name = fill(step["artifact"])
            _index, kept = upload_index(workspace, job, name, paths, step["hidden"])
            print(f"artifact {name!r}: {len(kept)} file(s), kept when the job ends", flush=True)
            if not kept and step["if_no_files_found"] == "error":
                print(f"sauci: no files were found with the paths: {', '.join(paths)}", flush=True)
                return 1
            return 0
        where, names = download_artifacts(
            workspace,
            inbox,
            fill(step["artifact"]),
            fill(step["pattern"]),
            step["merge"],
            fill(step["path"]),
        )
    except ValueError as exc:
        print(f"sauci: {exc}", flush=True)
        return 1
    print(f"downloaded {', '.join(names) or 'no artifacts'} to {where}", flush=True)
    with open(output, "a", encoding="utf-8") as fh:
        fh.write(f"download-path={where}\n")
    return 0


def write_entry_outputs(folder: str, job: str, values: dict[str, str]) -> None:
    """A matrix entry's outputs with when it ended, kept as its artifact
    (``<job>.entry.json``): the entries run in copies of the workspace."""
    import time

    with open(os.path.join(folder, f"{_safe(job)}.entry.json"), "w", encoding="utf-8") as fh:
        json.dump({"ended": time.time(), "outputs": values}, fh)


def entry_outputs(workspace: str, paths: list[str]) -> dict[str, str]:
    """A matrix job's outputs as GitHub gives them: the entry that ended last
    wins. ``paths`` are its entries' files (or patterns) in this step's artifact inbox."""
    best: tuple[float, dict[str, str]] = (float("-inf"), {})
    # A path may be a pattern (the entries of a matrix known only at run time).
    found = [name for p in paths for name in sorted(glob.glob(os.path.join(workspace, p)))]
    for name in found:
        try:
            with open(name, encoding="utf-8") as fh:
                data = json.load(fh)
            ended, outputs = float(data["ended"]), data["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(outputs, dict) and ended >= best[0]:
            best = (ended, {str(k): str(v) for k, v in outputs.items()})
    return best[1]
