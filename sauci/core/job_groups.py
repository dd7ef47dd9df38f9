"""Job-level concurrency groups: at most one running and one pending step per group.

GitHub's ``jobs.<id>.concurrency`` as a step's ``concurrency`` (group,
cancel-in-progress), across the builds one executor runs (a server's
runner): a step whose group is held by a running step waits, its reason
saying for which; a newer waiting step replaces (cancels) the older one;
with cancel-in-progress it also cancels the running one. Group names are
case-insensitive and per repository, as on GitHub. The executor asks
:meth:`JobGroups.claim` each time it would start the step and calls
:meth:`JobGroups.leave` when the step ends.
"""

from __future__ import annotations

import threading

import attrs

from sauci.core.models import Step

__all__ = ["BuildGroups", "Claim", "JobGroups"]

Owner = tuple[int, str]  # (build id, step name)


@attrs.frozen(kw_only=True)
class Claim:
    """The answer to a claim: start (``granted``), wait (``waiting`` says why), or
    end the step cancelled (``replaced`` says why)."""

    granted: bool = False
    waiting: str | None = None
    replaced: str | None = None


@attrs.define
class _Group:
    name: str
    holder: Owner | None = None
    holder_cancel: threading.Event | None = None
    pending: Owner | None = None
    pending_cancel: bool = False


def _who(owner: Owner) -> str:
    return f"build #{owner[0]}'s job {owner[1]!r}"


class JobGroups:
    """The groups of the steps one executor runs; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], _Group] = {}
        self._replaced: dict[Owner, str] = {}
        self._cancelled: dict[Owner, str] = {}  # running steps a newer one cancelled

    def claim(
        self,
        repo: str,
        group: str,
        owner: Owner,
        *,
        cancel_in_progress: bool,
        cancel: threading.Event,
    ) -> Claim:
        """Whether ``owner`` (build id, step name) may start now; ``cancel`` is the
        token the step will run with (set when a newer step cancels it)."""
        key = (repo, group.casefold())
        with self._lock:
            if owner in self._replaced:
                return Claim(replaced=self._replaced.pop(owner))
            state = self._groups.setdefault(key, _Group(name=group))
            if state.holder == owner:  # handed over while it waited
                if state.pending is not None and state.pending_cancel:
                    # A newer step with cancel-in-progress came first: it takes over.
                    newer = state.pending
                    state.holder, state.holder_cancel, state.pending = newer, None, None
                    return Claim(
                        replaced=f"cancelled: {_who(newer)} in concurrency group {group!r} cancels it"
                    )
                state.holder_cancel = cancel
                return Claim(granted=True)
            if state.holder is None:
                if state.pending in (None, owner):
                    state.holder, state.holder_cancel, state.pending = owner, cancel, None
                    return Claim(granted=True)
                # The waiting step takes the free group; this one waits behind it.
                state.holder, state.holder_cancel = state.pending, None
                state.pending = None
            if state.pending != owner:
                if state.pending is not None:
                    self._replaced[state.pending] = (
                        f"cancelled: {_who(owner)} replaces it in concurrency group {group!r}"
                    )
                state.pending, state.pending_cancel = owner, cancel_in_progress
                if cancel_in_progress and state.holder_cancel is not None:
                    holder = state.holder
                    assert holder is not None
                    self._cancelled[holder] = (
                        f"cancelled: {_who(owner)} in concurrency group {group!r} cancels it"
                    )
                    state.holder_cancel.set()
            assert state.holder is not None
            return Claim(waiting=f"waiting for {_who(state.holder)} (concurrency group {group!r})")

    def leave(self, repo: str, group: str, owner: Owner) -> str | None:
        """``owner`` ended (or will not run): free its place. Returns why a newer step
        cancelled it, if one did."""
        key = (repo, group.casefold())
        with self._lock:
            state = self._groups.get(key)
            if state is not None:
                if state.holder == owner:
                    state.holder, state.holder_cancel = None, None
                    if state.pending is not None:  # the waiting step may start
                        state.holder, state.pending = state.pending, None
                if state.pending == owner:
                    state.pending = None
                if state.holder is None and state.pending is None:
                    del self._groups[key]
            self._replaced.pop(owner, None)
            return self._cancelled.pop(owner, None)


class BuildGroups:
    """One build's use of :class:`JobGroups`: the cancel token of each of its steps
    (made before the step starts, so a newer step can cancel it), its claims, and
    leaving every group when the build ends."""

    def __init__(self, groups: JobGroups, build_id: int, repo: str) -> None:
        self._groups = groups
        self._build = build_id
        self._repo = repo
        self._tokens: dict[str, threading.Event] = {}
        self._joined: dict[str, str] = {}  # step name -> group

    def token(self, name: str) -> threading.Event:
        return self._tokens.setdefault(name, threading.Event())

    def check(self, step: Step) -> Claim | None:
        """None: the step may start; else a Claim that says why it waits or ends."""
        if step.concurrency is None:
            return None
        group, cancel_in_progress = step.concurrency
        self._joined[step.name] = group
        claim = self._groups.claim(
            self._repo,
            group,
            (self._build, step.name),
            cancel_in_progress=cancel_in_progress,
            cancel=self.token(step.name),
        )
        return None if claim.granted else claim

    def ended(self, name: str) -> str | None:
        """The step ended: leave its group; why a newer step cancelled it, if one did."""
        group = self._joined.pop(name, None)
        if group is None:
            return None
        return self._groups.leave(self._repo, group, (self._build, name))

    def close(self) -> None:
        for name in list(self._joined):
            self.ended(name)
