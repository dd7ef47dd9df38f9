"""Latent workers in virtual machines (``launcher = "vm"``): each launched worker
is ``sauci worker`` run as the one long step of a guest the VM sandbox boots
(:class:`sauci.sandbox.vm.VmSandbox`: the host's /usr shared read-only, the
worker's own workspace read-write, user-mode networking).

- Python: the guest runs the server's own interpreter and packages, hard-linked
  (never copied, never changed: QEMU runs as uid 1000 and the links stay
  root's) into ``<data>/launched-vm/<name>/py`` with SauCI's package beside
  it, so nothing is installed in the guest. ``data_dir`` must be on the
  filesystem of ``sys.prefix`` for the links.
- Network: the guest reaches the host at 10.0.2.2 (QEMU's user-mode network,
  which connects from the host's loopback), so ``127.0.0.1`` and
  ``localhost`` in the store and broker URLs, and in git remotes (git's
  ``url.<base>.insteadOf``), are rewritten to it. A repository cloned by a
  local path, an SQLite store, ``artifacts_dir`` and ``secrets_file`` are
  not in the guest: the worker keeps its data and artifacts in its
  workspace, and has no secrets file.
- Slow under emulation (TCG: no usable KVM here): the boot, then the
  interpreter and Celery's imports over 9p, take tens of seconds; a worker
  not online within ``start_timeout`` (300 s under emulation, 60 s with KVM)
  is ended and counted as a failed launch.
- Stopping it cancels the step: SIGTERM, then SIGKILL after the sandbox's
  grace; then the guest is ended.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.models import Step
from sauci.distributed._worker_env import worker_environment
from sauci.exceptions import SauCIError

__all__ = ["HOST_ADDRESS", "VmLauncher", "guest_urls"]

log = get_logger(__name__)

HOST_ADDRESS = "10.0.2.2"  # the host, as QEMU's user-mode network shows it to the guest
_LOOPBACK = ("127.0.0.1", "localhost")
_LOG_LIMIT = 4 * 1024 * 1024


GUEST_UID = 1000  # QEMU's uid when root starts it (sauci.sandbox.vm)


def _link_unwritable(source: str, target: str) -> None:
    """Hard-link ``source`` at ``target`` unless QEMU's uid could write it: a
    link is the same file, and the guest's workspace is writable."""
    found = os.stat(source)
    if found.st_uid == GUEST_UID or found.st_mode & 0o022:
        raise SauCIError(
            f"{source} is writable by the guest (owned by uid {found.st_uid}, "
            f"mode {found.st_mode & 0o7777:o}): it cannot be linked into a VM worker's workspace"
        )
    os.link(source, target)


def guest_urls(url: str) -> str:
    """``url`` with the host's loopback address as the guest reaches it."""
    for name in _LOOPBACK:
        url = url.replace(f"@{name}:", f"@{HOST_ADDRESS}:").replace(
            f"://{name}", f"://{HOST_ADDRESS}"
        )
    return url


class _Log:
    """The worker's output, appended to ``<data>/launched/<name>.log`` (capped)."""

    exceeded = False

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.written < _LOG_LIMIT:
            with self.path.open("ab") as fh:
                fh.write(data[: _LOG_LIMIT - self.written])
            self.written += len(data)
        return len(data)


@attrs.define(eq=False)
class _Guest:
    workspace: Path
    cancel: threading.Event
    thread: threading.Thread | None = None
    failure: str | None = None


class VmLauncher:
    """Starts each latent worker in a guest of the VM sandbox."""

    def __init__(
        self,
        settings: Settings,
        *,
        idle_exit: float = 30.0,
        memory_mib: int = 1024,
        sandbox: Any = None,
    ) -> None:
        if sandbox is None:
            from sauci.sandbox.vm import VmSandbox

            sandbox = VmSandbox(
                data_dir=settings.data_dir,
                allow_emulation=settings.vm_allow_emulation,
                memory_mib=memory_mib,
                network=True,
                grace=settings.grace,
            )
        self.sandbox = sandbox
        self.settings = settings
        self.idle_exit = idle_exit
        self.root = settings.data_dir / "launched-vm"
        emulated = getattr(getattr(sandbox, "acceleration", None), "emulated", False)
        self.start_timeout = 300.0 if emulated else 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> VmLauncher:
        try:
            return cls(settings, idle_exit=settings.launch_idle)
        except SauCIError as exc:
            raise SauCIError(f"launcher = 'vm': {exc}") from exc

    def environment(self, name: str) -> dict[str, str]:
        env = worker_environment(self.settings, name, self.idle_exit)
        env.pop("SAUCI_SECRETS_FILE", None)  # a host path: not in the guest
        env["SAUCI_STORE"] = guest_urls(env["SAUCI_STORE"])
        if "SAUCI_BROKER" in env:
            env["SAUCI_BROKER"] = guest_urls(env["SAUCI_BROKER"])
        env["SAUCI_DATA_DIR"] = "/workspace/data"
        env["SAUCI_ARTIFACTS_DIR"] = "/workspace/data/artifacts"
        env["HOME"] = "/workspace/data"
        env["PYTHONPATH"] = "/workspace/src"
        env["LD_LIBRARY_PATH"] = "/workspace/py/lib"  # a relocated interpreter's libpython
        env["PYTHONUNBUFFERED"] = "1"
        rules = [
            (f"{scheme}://{HOST_ADDRESS}", f"{scheme}://{name}")
            for scheme in ("http", "https", "git", "ssh")
            for name in _LOOPBACK
        ]
        env["GIT_CONFIG_COUNT"] = str(len(rules))
        for i, (base, was) in enumerate(rules):
            env[f"GIT_CONFIG_KEY_{i}"] = f"url.{base}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{i}"] = was
        return env

    def _prepare(self, name: str) -> Path:
        """The worker's workspace: the interpreter and SauCI linked in, once."""
        if os.geteuid() != 0:
            # QEMU would run as this user, and the guest could write through
            # the links into this user's own Python and SauCI.
            raise SauCIError(
                "the vm launcher needs root: it hard-links the server's Python into "
                "the guest's workspace, which QEMU (run as uid "
                f"{GUEST_UID} only when started by root) must not be able to write"
            )
        workspace = self.root / name
        for source, target in (
            (Path(sys.prefix), workspace / "py"),
            (Path(__file__).resolve().parents[1], workspace / "src" / "sauci"),  # the package
        ):
            if target.exists():
                continue
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copytree(source, partial, symlinks=True, copy_function=_link_unwritable)
            except (OSError, shutil.Error) as exc:
                raise SauCIError(
                    f"cannot link {source} into the guest's workspace {partial} "
                    f"(data_dir must be on the same filesystem): {exc}"
                ) from exc
            partial.rename(target)
        (workspace / "data").mkdir(exist_ok=True)
        return workspace

    def start(self, name: str) -> _Guest:
        workspace = self.root / name
        python = f"/workspace/py/bin/{Path(sys.executable).name}"
        step = Step(
            name="worker",
            run=(f"exec {python} -m sauci worker",),
            network=True,
            timeout=30 * 24 * 3600.0,  # it ends itself when idle
        )
        handle = _Guest(workspace=workspace, cancel=threading.Event())
        output = _Log(self.settings.data_dir / "launched" / f"{name}.log")
        env = self.environment(name)

        def run() -> None:  # in a thread: the first link takes seconds, the boot more
            try:
                self._prepare(name)
                result = self.sandbox.run(
                    step, workspace, output, env=env, cancel=handle.cancel, label=name
                )
                if result.exit_code != 0:
                    handle.failure = result.reason or f"exit status {result.exit_code}"
            except SauCIError as exc:
                handle.failure = str(exc)
            except Exception as exc:  # any failure is the launch's, named
                handle.failure = f"{type(exc).__name__}: {exc}"
            finally:
                if workspace.exists():
                    self.sandbox.build_ended(workspace)  # ends the guest

        handle.thread = threading.Thread(target=run, name=f"vm-{name}", daemon=True)
        handle.thread.start()
        return handle

    def alive(self, handle: _Guest) -> bool:
        return handle.thread is not None and handle.thread.is_alive()

    def failed(self, handle: _Guest) -> str | None:
        return handle.failure

    def stop(self, handle: _Guest) -> None:
        handle.cancel.set()
