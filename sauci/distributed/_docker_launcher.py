"""Latent workers in Docker containers (``launcher = "docker"``), as Buildbot's
DockerLatentWorker starts them: one container per launched worker, from the
operator's ``launch_image``, its command ``sauci worker --idle-exit N`` (or
``launch_command``), configured by ``SAUCI_*`` variables (the store and
broker URLs, labels, slots, sandbox policy) and nothing else of the server's
environment.

- Network: ``launch_network`` (default ``host``, so the store and broker at
  the server's addresses, 127.0.0.1 included, are reached as the server
  reaches them; or a Docker network's name, where their addresses must be
  that network's).
- Mounts: ``launch_volumes`` (``/host/path:/container/path[:ro]``); paths the
  worker is given (an SQLite store, a shared artifacts directory, a secrets
  file, a repository cloned from a local path) must be mounted at the same path.
- Found again: every container is named ``sauci-<worker name>`` and labelled
  with the server that launched it (its host and data directory). A server
  that starts removes the containers of a previous run of itself (crashed or
  stopped): a build one of them still ran is taken back by the lost-worker
  rule (``lost_timeout``) and retried.
- Removed: a container that has exited is removed as soon as the server's
  next round sees it, after its exit status is read (a failed start is
  counted with it). The image is never pulled: a missing image fails the
  launch at once, counted and retried with back-off.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.distributed._worker_env import worker_environment
from sauci.exceptions import ConfigError, MissingDependencyError, SauCIError

__all__ = ["OWNER_LABEL", "DockerLauncher"]

log = get_logger(__name__)

OWNER_LABEL = "org.sauci.launched-by"
WORKER_LABEL = "org.sauci.worker"
_RUNNING = ("created", "running", "restarting")


@attrs.define(eq=False)
class _Container:
    container: Any
    ended: bool = False
    failure: str | None = None


class DockerLauncher:
    """Starts each latent worker in a container of ``image``."""

    start_timeout = 60.0

    def __init__(
        self,
        settings: Settings,
        *,
        image: str,
        network: str = "host",
        volumes: tuple[str, ...] = (),
        command: str = "",
        idle_exit: float = 30.0,
        client: Any = None,
    ) -> None:
        if not image:
            raise ConfigError("launcher = 'docker' needs launch_image (the worker's image)")
        try:
            import docker
        except ImportError as exc:
            raise MissingDependencyError("docker", "docker") from exc
        self._errors = docker.errors
        try:
            self.client = client or docker.from_env(version="auto", timeout=60)
        except docker.errors.DockerException as exc:
            raise ConfigError(
                f"launcher = 'docker': cannot reach the Docker daemon: {exc}"
            ) from exc
        self.settings = settings
        self.image = image
        self.network = network
        self.volumes = list(volumes)
        self.idle_exit = idle_exit
        self.command = (
            shlex.split(command) if command else ["worker", "--idle-exit", f"{idle_exit:g}"]
        )
        self.owner = f"{socket.gethostname()}:{settings.data_dir}"

    @classmethod
    def from_settings(cls, settings: Settings) -> DockerLauncher:
        return cls(
            settings,
            image=settings.launch_image,
            network=settings.launch_network,
            volumes=settings.launch_volumes,
            command=settings.launch_command,
            idle_exit=settings.launch_idle,
        )

    def containers(self) -> list[Any]:
        """This server's containers, running or not."""
        return list(
            self.client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={self.owner}"})
        )

    def sweep(self) -> int:
        """Remove the containers a previous run of this server left; how many."""
        found = self.containers()
        for container in found:
            self._remove(container)
        if found:
            log.info("launched_containers_removed", count=len(found))
        return len(found)

    def environment(self, name: str) -> dict[str, str]:
        env = worker_environment(self.settings, name, self.idle_exit)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, name: str) -> _Container:
        errors = self._errors
        network: dict[str, Any] = (
            {"network_mode": "host"} if self.network == "host" else {"network": self.network}
        )
        try:
            # create, then start: run() would pull a missing image.
            container = self.client.containers.create(
                self.image,
                self.command,
                name=f"sauci-{name}",
                labels={OWNER_LABEL: self.owner, WORKER_LABEL: name},
                environment=self.environment(name),
                volumes=self.volumes,
                **network,
            )
        except errors.ImageNotFound as exc:
            raise SauCIError(f"image {self.image!r} not found: {_reason(exc)}") from exc
        except errors.DockerException as exc:
            raise SauCIError(f"docker create: {_reason(exc)}") from exc
        try:
            container.start()
        except errors.DockerException as exc:
            self._remove(container)
            raise SauCIError(f"docker start: {_reason(exc)}") from exc
        return _Container(container)

    def alive(self, handle: _Container) -> bool:
        if handle.ended:
            return False
        try:
            handle.container.reload()
            state = handle.container.attrs.get("State", {})
        except self._errors.NotFound:
            state = {"Status": "removed", "ExitCode": None}
        except self._errors.DockerException as exc:
            log.warning(
                "launched_container_unreadable", container=handle.container.id, why=str(exc)
            )
            return True  # asked again next round
        if state.get("Status") in _RUNNING:
            return True
        handle.ended = True
        handle.failure = _failure(state)
        self._remove(handle.container)
        return False

    def failed(self, handle: _Container) -> str | None:
        return handle.failure

    def stop(self, handle: _Container) -> None:
        """SIGTERM: the worker finishes its running builds, then exits."""
        if handle.ended:
            return
        with contextlib.suppress(self._errors.DockerException):  # ended meanwhile
            handle.container.kill(signal="SIGTERM")

    def _remove(self, container: Any) -> None:
        try:
            container.remove(force=True)
        except self._errors.NotFound:
            pass
        except self._errors.DockerException as exc:
            if "already in progress" not in str(exc):
                log.warning("launched_container_not_removed", container=container.id, why=str(exc))


def _failure(state: dict[str, Any]) -> str | None:
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return f"out of memory (exit status {code})"
    if state.get("Error"):
        return str(state["Error"])
    if code is None:
        return "removed by someone else"
    return None if code == 0 else f"exit status {code}"


def _reason(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
