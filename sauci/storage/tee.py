"""TeeStore: a primary store plus secondaries that receive every write.

Reads and decisions (ids, claims, "was this delivery seen") come from the
primary. Each secondary replays the primary's outcome, with build ids mapped
(a secondary may number its builds differently); one that fails does not fail
the caller: the write waits in its backlog (see ``_tee_backlog``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, Status
from sauci.exceptions import ConfigError
from sauci.storage import open_store
from sauci.storage._closing import Closing
from sauci.storage._tee_backlog import Backlog, Write, kept, log_appended, logs_completed, replayed
from sauci.storage.copy import create_at
from sauci.typing import Store

__all__ = ["TeeStore"]

# Writes (methods named so) are replayed as they are, with build ids mapped.
_WRITES = ("add_", "append_", "delete_", "record_", "save_", "update_")
# Compare-and-set operations, decided by the primary alone: the secondaries
# receive these fields of the primary's build as a plain update.
_OUTCOMES = {
    "claim_build": ("status", "claimed_by", "started_at", "heartbeat_at"),
    "heartbeat_build": ("heartbeat_at",),  # the primary's clock decided it
    "finish_build": ("status", "reason", "finished_at"),
}


class TeeStore(Closing):
    """Reads from ``primary``; every write also goes to each of ``secondaries``."""

    def __init__(self, primary: Store, secondaries: Sequence[Store] = ()) -> None:
        self.primary = primary
        self._secondaries = [Backlog(s, primary) for s in secondaries]
        # Not "log_files": the secondaries need the log's bytes, so a tee takes chunks.
        self.capabilities: frozenset[str] = primary.capabilities - {"log_files"}

    @classmethod
    def from_url(cls, url: str) -> TeeStore:
        """``tee:PRIMARY_URL;SECONDARY_URL[;...]``."""
        urls = [u.strip() for u in url.removeprefix("tee:").split(";") if u.strip()]
        if not urls:
            raise ConfigError(f"tee store {url!r} names no store: tee:PRIMARY;SECONDARY...")
        return cls(open_store(urls[0]), [open_store(u) for u in urls[1:]])

    @property
    def secondaries(self) -> list[Store]:
        return [s.store for s in self._secondaries]

    def backlog(self) -> list[int]:
        """Writes waiting for each secondary, in the order of ``secondaries``."""
        return [len(s.writes) for s in self._secondaries]

    def catch_up(self) -> bool:
        """Replay every backlog now; True when all secondaries are current."""
        return all([s.catch_up() for s in self._secondaries])

    def _tee(self, what: str, write: Write) -> None:
        for s in self._secondaries:
            s.send(what, write)

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        build = self.primary.create_build(request, status=status)

        def write(s: Store, ids: dict[int, int]) -> None:
            reuse = None if request.reuse_from is None else ids.get(request.reuse_from)
            again = attrs.evolve(request, reuse_from=reuse)
            ids[build.id] = create_at(s, again, status=status, queued_at=build.queued_at).id

        self._tee(f"create build {build.id}", write)
        return build

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "primary":  # not set yet (copy, pickle)
            raise AttributeError(name)
        # Reads, and anything the tee does not name, are the primary's alone.
        method = getattr(self.primary, name)
        if not name.startswith(_WRITES) and name not in _OUTCOMES:
            return method
        signature = inspect.signature(getattr(Store, name))

        def call(*args: Any, **kw: Any) -> Any:
            result = method(*args, **kw)
            bound = signature.bind(None, *args, **kw)
            given = {k: kept(v) for k, v in bound.arguments.items() if k != "self"}
            given.update(given.pop("changes", {}))  # update_build's **changes
            what = f"{name} {given.get('build_id', '')}".rstrip()
            if name == "append_log":  # by sizes: a lost answer or a gap is mended
                self._tee(what, log_appended(self.primary, given, result))
            elif name not in _OUTCOMES:
                self._tee(what, replayed(name, given))
            elif result:  # an outcome the primary decided: copy its fields
                build = result if isinstance(result, Build) else None
                self._copy(name, build or self.primary.get_build(given["build_id"]))
            if isinstance(given.get("status"), Status) and given["status"].done:
                self._tee(f"logs of {what}", logs_completed(self.primary, given["build_id"]))
            return result

        return call

    def _copy(self, name: str, build: Build) -> None:
        fields = {f: getattr(build, f) for f in _OUTCOMES[name]}
        self._tee(f"{name} {build.id}", replayed("update_build", {"build_id": build.id, **fields}))

    def close(self) -> None:
        """Close every store (a backlog not yet replayed is logged and dropped)."""
        for s in self._secondaries:
            s.close()
        self.primary.close()
