"""The server's spool round: one push SauCI cannot queue never stops the pushes after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Build, BuildRequest, Status
from sauci.core.server import ServerOptions
from sauci.exceptions import StoreError
from sauci.storage.memory import MemoryStore
from sauci.triggers import write_request

A = "a" * 40


class Refuses(MemoryStore):
    """A store whose driver refuses one ref (as SQLite refuses a name that is
    not UTF-8), and is down for another."""

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        if request.ref == "refs/heads/refused":
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        if request.ref == "refs/heads/down":
            raise StoreError("connection refused")
        return super().create_build(request, status=status)


def _server(tmp_path: Path, store: MemoryStore):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    settings.data_dir.mkdir(mode=0o700)
    return build_server(store=store, settings=settings, repos=[], options=ServerOptions())


def test_a_push_the_store_refuses_is_dropped_and_the_rest_are_queued(tmp_path):
    """Every round stopped at the refused push (the spool file was never
    acknowledged), so no later push was built, ever."""
    store = Refuses()
    server = _server(tmp_path, store)
    spool = tmp_path / "data" / "spool"
    for ref in ("refs/heads/refused", "refs/heads/later"):
        write_request(spool, BuildRequest(repo="/srv/r.git", ref=ref, sha=A, event="push"))
    assert 2 == server.ingest_spool()
    assert ["refs/heads/later"] == [b.ref for b in store.list_builds()]
    assert [] == list((spool / "new").iterdir())
    assert "refs/heads/refused" in (server.last_error or "")


def test_a_store_that_is_down_keeps_the_push_in_the_spool(tmp_path):
    store = Refuses()
    server = _server(tmp_path, store)
    spool = tmp_path / "data" / "spool"
    write_request(spool, BuildRequest(repo="/srv/r.git", ref="refs/heads/down", sha=A))
    with pytest.raises(StoreError):
        server.ingest_spool()
    assert 1 == len(list((spool / "new").iterdir()))
