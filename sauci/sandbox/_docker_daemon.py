"""Talking to the docker daemon for DockerSandbox: the client, how SauCI names
and labels its containers, signals, removal, and the attach stream's frames.

Every function takes the client (``api``) and the SDK's ``docker.errors``
module (``errors``), as :func:`connect` returns them.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import struct
import time
from typing import Any

from sauci._logging import get_logger
from sauci.exceptions import MissingDependencyError, SandboxError

__all__ = [
    "POLL_INTERVAL",
    "connect",
    "container_labels",
    "container_name",
    "create_container",
    "frames",
    "remove_container",
    "signal_container",
]

log = get_logger(__name__)

POLL_INTERVAL = 0.05
_HEADER = struct.Struct(">BxxxL")  # docker's multiplexed stream: type, size
_LABEL = re.compile(r"^b(\d+)-")


def connect(base_url: str | None, client: Any = None) -> tuple[Any, Any]:
    """The client (``client`` itself when given) and ``docker.errors``.

    The daemon is ``base_url``, else ``DOCKER_HOST``, else Docker's default
    socket; ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` set up TLS as they
    do for the ``docker`` command (the SDK's ``kwargs_from_env``). Fails with
    the install command when the docker SDK is missing.
    """
    try:
        import docker
    except ImportError as exc:
        raise MissingDependencyError("docker", "docker") from exc
    if client is None:
        where = base_url or os.environ.get("DOCKER_HOST") or "the default socket"
        try:
            kwargs = docker.utils.kwargs_from_env()
            if base_url:
                kwargs["base_url"] = base_url
            client = _client_class(docker)(**kwargs, version="auto", timeout=60)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot reach the docker daemon at {where}: {exc}") from exc
    return client, docker.errors


@functools.cache
def _client_class(docker: Any) -> Any:
    """docker's APIClient, with the CA of its TLS settings first.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a
    session's CA file, so with either set (as many hosts do) the daemon's
    certificate is checked against the wrong CAs and TLS fails
    (docker/docker-py#2433, open). The CA named by DOCKER_CERT_PATH wins here.
    """

    class APIClient(docker.APIClient):  # type: ignore[misc,name-defined]
        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if verify is None and isinstance(self.verify, str):
                settings["verify"] = self.verify
            return settings

    return APIClient


def container_name(owner: str, label: str, service: str | None = None) -> str:
    """A new container's name: owner, step label (and service), a random suffix."""
    base = f"{owner}-{label}" if service is None else f"{owner}-{label}-{service}"
    name = re.sub(r"[^a-zA-Z0-9_.-]", "_", base)[:200]
    return f"{name}-{secrets.token_hex(4)}"


def container_labels(
    owner: str, step: str, label: str, service: str | None = None
) -> dict[str, str]:
    """The ``sauci.*`` labels by which :meth:`DockerSandbox.sweep` finds a container."""
    match = _LABEL.match(label)
    labels = {
        "sauci.owner": owner,
        "sauci.build": match.group(1) if match else "",
        "sauci.step": step,
        "sauci.label": label,
    }
    if service is not None:
        labels["sauci.service"] = service
    return labels


def signal_container(api: Any, errors: Any, container: str, sig: str) -> None:
    try:
        api.kill(container, signal=sig)
    except errors.APIError as exc:  # already stopped
        log.debug("container_signal_failed", container=container, error=str(exc))


def remove_container(api: Any, errors: Any, container: str) -> None:
    for attempt in range(3):
        try:
            api.remove_container(container, force=True)
            return
        except errors.NotFound:
            return
        except errors.DockerException as exc:
            if attempt == 2:
                log.error("container_remove_failed", container=container, error=str(exc))
            time.sleep(0.2)


def frames(buffer: bytearray) -> bytes:
    """Take every complete frame off ``buffer``; their payloads, joined."""
    out = bytearray()
    pos = 0
    end = len(buffer)
    while end - pos >= _HEADER.size:
        _, size = _HEADER.unpack_from(buffer, pos)
        if end - pos - _HEADER.size < size:
            break
        out += buffer[pos + _HEADER.size : pos + _HEADER.size + size]
        pos += _HEADER.size + size
    del buffer[:pos]
    return bytes(out)


def create_container(
    api: Any, errors: Any, image: str, *, of: str, what: str, **config: Any
) -> str:
    """Create a container of ``image`` with no tty (and no stdin unless
    ``stdin_open`` is given), whose environment is
    exactly the one given (no proxy settings of the client's); its id. The
    SandboxError says whose image is missing (``of``) or ``what`` was not made."""
    try:
        created = api.create_container(
            image, **{"stdin_open": False, **config}, tty=False, use_config_proxy=False
        )
    except errors.ImageNotFound as exc:
        raise SandboxError(f"image {image!r}{of} is not available to the docker daemon") from exc
    except errors.DockerException as exc:
        raise SandboxError(f"cannot create {what}: {exc}") from exc
    return str(created["Id"])
