"""On cgroup v1 LocalSandbox makes its no-op cgroup move (the one prepare()
makes before a checkout) when a step ends too, so that the next step's move
into its cgroup finds the kernel's fast spell more often (issue 'Operations
that tell the truth', item 1); without cgroups it moves nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import sauci.sandbox.local as local
from sauci.core.models import Step
from sauci.exceptions import SandboxError


class Log:
    exceeded = False

    def write(self, data: bytes) -> None:
        pass


def _run(sandbox: local.LocalSandbox, run: str, tmp_path: Path) -> int | None:
    result = sandbox.run(
        Step(name="s", run=run),
        tmp_path,
        Log(),
        env={"PATH": "/usr/bin:/bin"},
        cancel=threading.Event(),
        label="warm",
    )
    return result.exit_code


def test_a_step_that_ends_makes_the_no_op_move(tmp_path, monkeypatch):
    try:
        sandbox = local.LocalSandbox(use_cgroups=True, grace=0.5, cgroup_prefix="sauci-test-warm-")
    except SandboxError as exc:
        pytest.skip(f"cgroups cannot be created on this machine: {exc}")
    if sandbox.layout is None or sandbox.layout.version != 1:
        pytest.skip("cgroup v1 only: v2 moves no thread")
    moves: list[Path | None] = []
    monkeypatch.setattr(local, "warm_moves", moves.append)
    assert [0, 3] == [_run(sandbox, "true", tmp_path), _run(sandbox, "exit 3", tmp_path)]
    base = next(iter(sandbox.layout.bases.values()))
    assert [base / "tasks", base / "tasks"] == moves  # after each step, passed or failed


def test_without_cgroups_nothing_moves(tmp_path, monkeypatch):
    moves: list[Path | None] = []
    monkeypatch.setattr(local, "warm_moves", moves.append)
    assert 0 == _run(local.LocalSandbox(use_cgroups=False), "true", tmp_path)
    assert [] == moves
