"""Give a step the artifacts its ancestors kept: copied into its workspace before it runs.

For ``Step.download_artifacts`` (a workflow's actions/download-artifact):
the kept files of every step it needs, directly or not, are copied to
``<workspace>/.sauci-artifacts/<step>/<ancestor>/<path>``, where the step
itself (the job driver) picks what it asked for.

The workspace may be shared with steps still running, which may have put a
symlink where this writes: every directory is made and opened relative to
its parent's descriptor with ``O_NOFOLLOW``, and every file is created with
``O_EXCL``, so nothing is ever written through a link out of the workspace.
The stored artifacts are copied, never linked: the step cannot change them.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.dag import resolve_needs
from sauci.core.models import Build, Pipeline, Step
from sauci.core.paths import artifact_dir, safe_name
from sauci.exceptions import SandboxError

__all__ = ["INBOX", "ancestors", "copy_artifacts_in", "give_artifacts", "kept_artifacts"]

log = get_logger(__name__)

INBOX = ".sauci-artifacts"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def ancestors(pipeline: Pipeline, step: Step) -> list[str]:
    """Every step ``step`` needs, directly or through others, in file order."""
    deps = resolve_needs(pipeline.steps)
    seen: set[str] = set()
    todo = list(deps.get(step.name, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(deps.get(name, ()))
    return [s.name for s in pipeline.steps if s.name in seen]


@contextmanager
def _fresh_dir(parent: int, name: str) -> Iterator[int]:
    """``name`` under the directory ``parent`` as an empty real directory, opened."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)  # fd-based: never follows a link
        else:
            os.unlink(name, dir_fd=parent)
    os.mkdir(name, 0o755, dir_fd=parent)
    fd = os.open(name, _DIR, dir_fd=parent)
    try:
        yield fd
    finally:
        os.close(fd)


def _copy_tree(source: Path, target: int) -> int:
    """Copy the regular files under ``source`` into the open directory ``target``."""
    count = 0
    for entry in os.scandir(source):
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(entry.name, 0o755, dir_fd=target)
            fd = os.open(entry.name, _DIR, dir_fd=target)
            try:
                count += _copy_tree(Path(entry.path), fd)
            finally:
                os.close(fd)
        elif entry.is_file(follow_symlinks=False):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(entry.name, flags, 0o644, dir_fd=target)
            with open(entry.path, "rb") as src, os.fdopen(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            count += 1
    return count


def copy_artifacts_in(workspace: Path, step: Step, sources: Mapping[str, Path]) -> int:
    """Copy the kept artifacts of the steps in ``sources`` (step name ->
    its directory, see :func:`kept_artifacts`) into the workspace's inbox
    for ``step``; returns the files copied."""
    count = 0
    root = os.open(workspace, _DIR)
    try:
        try:
            os.mkdir(INBOX, 0o755, dir_fd=root)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(INBOX, dir_fd=root, follow_symlinks=False).st_mode):
                os.unlink(INBOX, dir_fd=root)
                os.mkdir(INBOX, 0o755, dir_fd=root)
        inbox = os.open(INBOX, _DIR, dir_fd=root)
        try:
            with _fresh_dir(inbox, safe_name(step.name)) as mine:
                for name, source in sources.items():
                    if source.is_dir():
                        with _fresh_dir(mine, safe_name(name)) as target:
                            count += _copy_tree(source, target)
        finally:
            os.close(inbox)
    finally:
        os.close(root)
    log.info("artifacts_copied_in", step=step.name, steps=len(sources), files=count)
    return count


def kept_artifacts(
    artifacts_dir: Path, build: Build, names: Iterable[str], *, earlier_uuid: str = ""
) -> dict[str, Path]:
    """Where the artifacts each step of ``names`` kept are: the build's own
    directory, else (a step a rerun reused, not run again) the directory of
    the build it reuses, whose uuid is ``earlier_uuid``."""
    here = artifact_dir(artifacts_dir, build.repo, build.id, uuid=build.uuid)
    earlier = (
        None
        if build.reuse_from is None
        else artifact_dir(artifacts_dir, build.repo, build.reuse_from, uuid=earlier_uuid)
    )
    found = {}
    for name in names:
        source = here / safe_name(name)
        if not source.is_dir() and earlier is not None:
            source = earlier / safe_name(name)
        found[name] = source
    return found


def give_artifacts(
    artifacts_dir: Path,
    build: Build,
    pipeline: Pipeline,
    step: Step,
    workspace: Path,
    *,
    earlier_uuid: str = "",
) -> None:
    """The artifacts ``step`` asks for, for the executor: those of the steps
    in ``step.artifacts_from`` copied over its workspace at their paths (as
    GitLab gives a job its dependencies' artifacts, :func:`unpack_into`), and
    with ``step.download_artifacts`` every ancestor's in its inbox
    (:func:`copy_artifacts_in`). SandboxError (the step errors) when it
    cannot. ``earlier_uuid``: the uuid of the build a rerun reuses (its
    directory's name)."""
    from sauci.core.artifact_unpack import unpack_into

    needed = ancestors(pipeline, step)
    try:
        if step.artifacts_from:
            names = [name for name in step.artifacts_from if name in set(needed)]
            found = kept_artifacts(artifacts_dir, build, names, earlier_uuid=earlier_uuid)
            count = unpack_into(workspace, list(found.values()))
            log.info("artifacts_unpacked", step=step.name, steps=len(names), files=count)
        if step.download_artifacts:
            found = kept_artifacts(artifacts_dir, build, needed, earlier_uuid=earlier_uuid)
            copy_artifacts_in(workspace, step, found)
    except OSError as exc:
        raise SandboxError(f"cannot give the step its artifacts: {exc}") from exc
