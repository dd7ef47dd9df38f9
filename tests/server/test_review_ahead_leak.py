"""Review: a reader failing with anything but SauCIError/OSError leaks the slot it reserved."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.core.models import Status
from sauci.core.runner import LocalRunner
from sauci.source import workspaces
from tests.server.test_checkouts_ahead import make_repo, queue, serve


def test_check_out_ahead_hands_back_its_slot_when_the_reader_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path)
    server = serve(tmp_path)
    server.stop()  # nothing claims: the queued build stays queued
    try:
        released: list[Path] = []
        release = workspaces.Lease.release

        def counting(self: workspaces.Lease, *a: object, **k: object) -> None:
            released.append(self.path)
            return release(self, *a, **k)

        monkeypatch.setattr(workspaces.Lease, "release", counting)

        def broken(self: LocalRunner, workspace: Path, build: object) -> None:
            raise RecursionError("a reader's bug")

        monkeypatch.setattr(LocalRunner, "_pipeline", broken)
        build_id = queue(server, repo)
        build = server.store.get_build(build_id)
        assert build.status is Status.QUEUED
        local = server.runner.wrapped.local  # type: ignore[attr-defined]
        with pytest.raises(RecursionError):
            local.check_out_ahead(build)
        assert released, "the slot reserved ahead was never released"
    finally:
        pass
