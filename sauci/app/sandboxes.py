"""What each sandbox can do, by name: what ``sauci validate`` and ``sauci run``
check a pipeline's steps against before anything runs (:mod:`sauci.core.demands`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sauci._logging import get_logger
from sauci.core.demands import SandboxCapabilities
from sauci.exceptions import PluginError, SandboxError
from sauci.plugins import SANDBOXES

if TYPE_CHECKING:
    from sauci.sandbox.policy import ServerSandboxes

__all__ = ["policy_capabilities", "sandbox_capabilities"]

log = get_logger(__name__)


def sandbox_capabilities(
    default: str, *, names: Sequence[str] | None = None
) -> SandboxCapabilities:
    """The sandboxes known by alias, ``default`` running the steps that name none.

    ``names`` are the ones a message may suggest (default: the built-in
    sandboxes, local, namespace, docker). A sandbox's capabilities come from
    its class when it declares them there (docker: no daemon is asked), or
    else from an instance made as the run would make it (local and namespace
    claim the cgroup limits this machine has). One that cannot be made here
    (bubblewrap missing) has none known: its steps are checked by the
    executor when they run.
    """
    found: dict[str, frozenset[str] | None] = {}

    def lookup(name: str) -> frozenset[str] | None:
        if name not in found:
            found[name] = _capabilities_of(name)
        return found[name]

    return SandboxCapabilities(
        default=default,
        lookup=lookup,
        names=tuple(SANDBOXES.builtins) if names is None else tuple(names),
    )


def _capabilities_of(name: str) -> frozenset[str] | None:
    try:
        cls = SANDBOXES.load(name)
    except PluginError:
        return None  # an unknown name is reported where the name is read
    declared = getattr(cls, "capabilities", None)
    if isinstance(declared, frozenset):
        return declared
    try:
        sandbox = cls()
    except Exception as exc:  # any plugin's failure: nothing known, nothing claimed
        log.debug("sandbox_capabilities_unknown", sandbox=name, error=str(exc))
        return None
    try:
        return frozenset(getattr(sandbox, "capabilities", ()))
    finally:
        close = getattr(sandbox, "close", None)
        if callable(close):
            close()


def policy_capabilities(sandboxes: ServerSandboxes) -> SandboxCapabilities:
    """What a server's or worker's own sandboxes can do: the policy's default
    and the names it allows, as the instances the steps will run in (made
    when a step first asks for one, as the executor would)."""

    def lookup(name: str) -> frozenset[str] | None:
        if name not in sandboxes.allowed:
            return None  # refused by the policy, at the step's 'sandbox:' key
        try:
            return frozenset(sandboxes.load(name).capabilities)
        except SandboxError as exc:
            log.debug("sandbox_capabilities_unknown", sandbox=name, error=str(exc))
            return None

    names = (sandboxes.name, *sorted(set(sandboxes.allowed) - {sandboxes.name}))
    return SandboxCapabilities(default=sandboxes.name, lookup=lookup, names=names)
