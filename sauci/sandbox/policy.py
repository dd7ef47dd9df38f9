"""The server's sandbox policy: where a served build's steps run, and what a
pipeline may ask for instead.

Under ``sauci serve`` and ``sauci worker`` the pipeline file comes from
whoever can push, so the operator's settings decide: ``sandbox`` is the
default (``namespace`` unless the operator names another), and
``allowed_sandboxes`` the other names a step's ``sandbox:`` may give. An
isolating default that cannot run here stops the server at start, with what
to install; the server never falls back to ``local`` by itself, because
``local`` is no boundary (docs/security.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.paths import secure_data_dir
from sauci.exceptions import ConfigError, PluginError, SandboxError
from sauci.typing import Sandbox

__all__ = ["SERVER_DEFAULT", "ServerSandboxes", "server_sandboxes"]

log = get_logger(__name__)

SERVER_DEFAULT = "namespace"


@attrs.frozen(kw_only=True)
class ServerSandboxes:
    """The default sandbox of a server or worker, and the others its policy allows.

    ``allowed`` holds every name a pipeline may give, the default's included;
    :meth:`load` makes one of them (once, on first use) and refuses the rest.
    """

    name: str
    default: Sandbox
    allowed: frozenset[str]
    make: Callable[[str], Sandbox]
    _made: dict[str, Sandbox] = attrs.field(factory=dict, alias="_made")
    _lock: threading.Lock = attrs.field(factory=threading.Lock, alias="_lock")

    @property
    def traversable(self) -> bool:
        """Whether the data dir must let another uid pass through: the
        namespace sandbox, started by root, binds workspaces as another uid."""
        return _traversable(self.allowed)

    def load(self, name: str) -> Sandbox:
        """The sandbox ``name``, when the policy allows it; SandboxError otherwise."""
        if name == self.name:
            return self.default
        if name not in self.allowed:
            raise SandboxError(
                f"the sandbox {name!r} is not allowed by this server's policy "
                f"(allowed: {', '.join(sorted(self.allowed))})"
            )
        with self._lock:
            if name not in self._made:
                self._made[name] = self.make(name)
            return self._made[name]

    def sweep_containers(self) -> list[str]:
        """At a restart: remove the containers (of DockerSandbox, when the
        policy allows it) that a crashed server or worker left; their names.
        A daemon that cannot be reached is logged, not raised."""
        if "docker" not in self.allowed:
            return []
        try:
            sweep = getattr(self.load("docker"), "sweep", None)
            return list(sweep()) if callable(sweep) else []
        except SandboxError as exc:
            log.warning("container_sweep_failed", error=str(exc))
            return []


def server_sandboxes(
    settings: Settings, *, cgroup_prefix: str, default: Sandbox | None = None
) -> ServerSandboxes:
    """The sandboxes ``settings`` allow a server (or worker) to run steps in.

    ConfigError when the default cannot run here, or an allowed name is not
    an installed sandbox: the server refuses to start rather than run pushed
    code with less isolation than its operator chose. ``default``: an
    instance to use for the default name (tests, embedding code).
    """
    name = settings.sandbox or SERVER_DEFAULT
    allowed = frozenset({name, *settings.allowed_sandboxes})
    for other in sorted(allowed - {name}):
        _check_known(other)

    def make(which: str) -> Sandbox:
        return _make(which, settings, cgroup_prefix=cgroup_prefix)

    if default is not None:
        return ServerSandboxes(name=name, default=default, allowed=allowed, make=make)
    try:
        default = make(name)
    except SandboxError as exc:
        raise ConfigError(
            f"the {name!r} sandbox cannot run here: {exc}. SauCI does not serve builds with "
            "less isolation than its settings ask for; only if everyone who can push is "
            "trusted, run steps unisolated with sandbox = 'local' (--sandbox local, "
            "SAUCI_SANDBOX=local)"
        ) from exc
    if name == "local":
        log.warning(
            "sandbox_local_chosen",
            note="steps run as this server's own user, with no isolation: "
            "every pusher must be trusted",
        )
    log.info(
        "sandbox_policy",
        default=name,
        allowed=sorted(allowed),
        network=settings.network,
        data_dir=str(settings.data_dir),
    )
    return ServerSandboxes(name=name, default=default, allowed=allowed, make=make)


def _traversable(allowed: frozenset[str]) -> bool:
    return "namespace" in allowed and os.geteuid() == 0


def _check_known(name: str) -> None:
    from sauci.plugins import load_class

    try:
        load_class("sauci.sandboxes", name)
    except PluginError as exc:
        raise ConfigError(f"allowed_sandboxes: {exc}") from exc


def _make(name: str, settings: Settings, *, cgroup_prefix: str) -> Sandbox:
    """A sandbox configured for a server: SauCI's own files hidden from its steps."""
    if name == "namespace":
        from sauci.sandbox.namespace import DEFAULT_HIDE, NamespaceSandbox, check_reachable

        # The data dir (store, logs, secrets), wherever it lives, and the
        # artifacts and the secrets file, when they live elsewhere.
        private = [settings.data_dir, settings.artifacts_dir]
        secure_data_dir(
            settings.data_dir,
            traversable=_traversable(frozenset({name})),
        )
        if settings.secrets_file is not None:
            private.append(settings.secrets_file.parent)
        sandbox = NamespaceSandbox(
            grace=settings.grace,
            cgroup_prefix=cgroup_prefix,
            hide=(*DEFAULT_HIDE, *_hideable(private)),
            network=settings.network,
        )
        if sandbox.host_uid is not None:  # root drops to this uid: it must reach the workspaces
            check_reachable(
                settings.workspaces_dir / "probe", sandbox.host_uid, sandbox.host_gid or 0
            )
        return sandbox
    if name == "vm":
        from sauci.sandbox.vm import VmSandbox

        return VmSandbox(
            data_dir=settings.data_dir,
            grace=settings.grace,
            network=settings.network,
            allow_emulation=settings.vm_allow_emulation,
        )
    if name == "local":
        from sauci.sandbox.local import LocalSandbox

        return LocalSandbox(grace=settings.grace, cgroup_prefix=cgroup_prefix)
    from sauci.plugins import load_class

    try:
        cls: Any = load_class("sauci.sandboxes", name)
    except PluginError as exc:
        raise SandboxError(str(exc)) from exc
    if name == "docker":  # its containers are labelled as this server's, to be swept
        return cls(
            grace=settings.grace,
            owner=cgroup_prefix.rstrip("-"),
            image=settings.docker_image or None,
        )
    try:
        return cls(grace=settings.grace)
    except TypeError:  # a plugin that takes no grace
        return cls()


def _hideable(paths: list[Path]) -> list[str]:
    """The paths that a tmpfs can cover: existing directories, not the root."""
    out = []
    for path in paths:
        path = Path(os.path.abspath(path))
        if path != Path("/") and path.is_dir() and not path.is_symlink():
            out.append(str(path))
    return out
