"""The process scan of the local sandbox without cgroups (sauci.sandbox._pscan)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from sauci.sandbox import _pscan
from sauci.sandbox._pscan import ProcessTree


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: the scan can find it only by its environment.
    return subprocess.Popen(argv, env=env, start_new_session=True)


@pytest.fixture
def tree() -> Iterator[ProcessTree]:
    tree = ProcessTree()
    root = tree.spawn(["sleep", "30"], lambda argv, _: _start(argv, {}))
    yield tree
    root.kill()
    root.wait()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """How often the scan read each process's environment."""
    counts: dict[int, int] = {}
    real = _pscan.read_environ

    def counted(pid: int) -> bytes | None:
        counts[pid] = counts.get(pid, 0) + 1
        return real(pid)

    monkeypatch.setattr(_pscan, "read_environ", counted)
    return counts


def test_a_process_outside_the_session_is_found_by_its_marker(tree: ProcessTree) -> None:
    marked = _start(["sleep", "30"], tree.env({"PATH": os.environ["PATH"]}))
    try:
        assert marked.pid in tree.pids()
        assert tree.root_pid in tree.pids()
    finally:
        marked.kill()
        marked.wait()


def test_a_process_caught_in_execve_is_read_again(
    tree: ProcessTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While execve() writes the new program's environment pointers, /proc
    # shows an empty environment; the kernel publishes it at once afterwards.
    marked = _start(["sleep", "30"], tree.env({"PATH": os.environ["PATH"]}))
    real = _pscan.read_environ
    empty_reads = {marked.pid: 3}

    def in_execve(pid: int) -> bytes | None:
        if empty_reads.get(pid):
            empty_reads[pid] -= 1
            return b""
        return real(pid)

    monkeypatch.setattr(_pscan, "read_environ", in_execve)
    try:
        assert marked.pid in tree.pids()
        assert 0 == empty_reads[marked.pid]
    finally:
        marked.kill()
        marked.wait()


def test_a_process_with_no_environment_is_waited_for_once(
    tree: ProcessTree, reads: dict[int, int]
) -> None:
    bare = _start(["/bin/sleep", "30"], {})
    try:
        assert bare.pid not in tree.pids()
        first = reads[bare.pid]
        assert first > 1  # read again while an execve() could still be writing
        assert bare.pid not in tree.pids()
        assert first + 1 == reads[bare.pid]
    finally:
        bare.kill()
        bare.wait()


def test_members_by_session_need_no_environment_read(
    tree: ProcessTree, reads: dict[int, int]
) -> None:
    assert [tree.root_pid] == tree.pids()
    assert tree.root_pid not in reads
