"""DockerSandbox: each step in a fresh container, through the ``docker`` Python SDK.

The container gets the workspace at ``/workspace``, no network unless
``step.network``, pids/memory/cpu limits, a non-root user, no capabilities,
a read-only root with a private /tmp, and labels (``sauci.owner``,
``sauci.build``, ``sauci.step``) so that :meth:`DockerSandbox.sweep` can
remove what a crashed server left. Containers are always removed.

A step's ``services`` run in containers of their own, started (and waited
for) before the step's container; the step's container joins the network
namespace of the first service, so every service is on ``127.0.0.1``.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import struct
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.logsink import format_size
from sauci.core.models import EndedBy, Limits, Service, Step, StepResult
from sauci.exceptions import MissingDependencyError, SandboxError
from sauci.sandbox.local import _workdir
from sauci.sandbox.namespace import adopt_workspace
from sauci.typing import LogWriter

__all__ = ["DockerSandbox"]

log = get_logger(__name__)

READ_SIZE = 256 * 1024
POLL_INTERVAL = 0.05
_HEADER = struct.Struct(">BxxxL")  # docker's multiplexed stream: type, size
_LABEL = re.compile(r"^b(\d+)-")
SERVICE_LOG_TAIL = 64 * 1024  # bytes of each service's output kept in the step's log


class DockerSandbox:
    """Runs each step in its own container and removes it afterwards.

    ``base_url``: the daemon (``unix:///run/sauci/docker.sock``); None uses
    DOCKER_HOST. ``image``: used when a step names none. ``user``: uid, gid
    inside (without userns-remap also on the host); None means 1000:1000
    when SauCI is root (the workspace is handed to that uid before each step)
    and SauCI's own ids otherwise. ``owner`` is written into every
    container's ``sauci.owner`` label; give each server its own.
    """

    capabilities: frozenset[str] = frozenset(
        {
            "limits.memory",
            "limits.processes",
            "limits.cpu",
            "isolates_filesystem",
            "isolates_network",
            "image",
            "services",
        }
    )

    def __init__(
        self,
        *,
        base_url: str | None = None,
        image: str | None = None,
        owner: str = "sauci",
        grace: float = 5.0,
        user: tuple[int, int] | None = None,
        limits: Limits | None = None,
        default_processes: int = 512,
        workspace_path: str = "/workspace",
        tmp_size: int = 1 << 30,
        read_only: bool = True,
        client: Any = None,
    ) -> None:
        try:
            import docker
        except ImportError as exc:
            raise MissingDependencyError("docker", "docker") from exc
        self._errors = docker.errors
        if client is None:
            try:
                client = (
                    docker.APIClient(base_url=base_url, version="auto", timeout=60)
                    if base_url
                    else docker.APIClient(version="auto", timeout=60)
                )
            except docker.errors.DockerException as exc:
                raise SandboxError(f"cannot reach the docker daemon at {base_url}: {exc}") from exc
        self.api = client
        self.image = image
        self.owner = owner
        self.grace = grace
        as_root = os.geteuid() == 0
        self.user = user or ((1000, 1000) if as_root else (os.getuid(), os.getgid()))
        self.adopt = as_root
        self.limits = limits or Limits()
        self.default_processes = default_processes
        self.workspace_path = workspace_path
        self.tmp_size = tmp_size
        self.read_only = read_only

    def close(self) -> None:
        self.api.close()

    # -- after a crash -------------------------------------------------------

    def sweep(self, owner: str | None = None) -> list[str]:
        """Remove every container labelled ``sauci.owner=<owner>``; returns their names."""
        owner = owner or self.owner
        try:
            found = self.api.containers(all=True, filters={"label": f"sauci.owner={owner}"})
        except self._errors.DockerException as exc:
            raise SandboxError(f"cannot list containers: {exc}") from exc
        removed = []
        for c in found:
            name = (c.get("Names") or [c["Id"]])[0].lstrip("/")
            try:
                self.api.remove_container(c["Id"], force=True)
                removed.append(name)
            except self._errors.NotFound:
                removed.append(name)
            except self._errors.DockerException as exc:
                log.warning("container_sweep_failed", container=name, error=str(exc))
        if removed:
            log.info("containers_swept", owner=owner, containers=removed)
        return removed

    # -- running -------------------------------------------------------------

    def run(
        self,
        step: Step,
        workspace: Path,
        log: LogWriter,
        *,
        env: Mapping[str, str],
        cancel: threading.Event,
        label: str,
    ) -> StepResult:
        """Run ``step`` in a new container; see the Sandbox protocol."""
        started = time.monotonic()
        if cancel.is_set():
            return StepResult(exit_code=None, ended_by=EndedBy.CANCELLED, reason="cancelled")
        workspace = Path(os.path.abspath(workspace))
        _, problem = _workdir(workspace, step.workdir)
        if problem is not None:
            log.write(f"sauci: error: {problem}\n".encode())
            return StepResult(exit_code=1, duration=time.monotonic() - started, reason=problem)
        image = step.image or self.image
        if not image:
            raise SandboxError(f"step {step.name!r} names no image and the sandbox has no default")
        if self.adopt:
            adopt_workspace(workspace, *self.user)
        memory = step.limits.memory if step.limits.memory is not None else self.limits.memory
        cpu = step.limits.cpu if step.limits.cpu is not None else self.limits.cpu
        processes = step.limits.processes or self.limits.processes or self.default_processes
        limits = Limits(memory=memory, processes=processes, cpu=cpu)
        if not step.services:
            return self._run_job(step, workspace, image, env, label, limits, log, cancel, started)
        services: list[tuple[Service, str]] = []
        try:
            try:
                ended = self._start_services(step, label, services, cancel, started)
            except self._errors.DockerException as exc:
                raise SandboxError(f"docker failed while starting services: {exc}") from exc
            if ended is not None:
                return attrs.evolve(ended, duration=time.monotonic() - started)
            env = {
                **env,
                **{f"SAUCI_SERVICE_{s.env_name}_HOST": "127.0.0.1" for s, _ in services},
            }
            network = f"container:{services[0][1]}"
            return self._run_job(
                step, workspace, image, env, label, limits, log, cancel, started, network
            )
        finally:
            for service, container in services:
                self._service_log(service, container, log)
            for _, container in services:
                self._remove(container)

    def _run_job(
        self,
        step: Step,
        workspace: Path,
        image: str,
        env: Mapping[str, str],
        label: str,
        limits: Limits,
        log: LogWriter,
        cancel: threading.Event,
        started: float,
        network: str | None = None,
    ) -> StepResult:
        container = self._create(step, workspace, image, env, label, limits, network)
        try:
            return self._run(step, container, limits, log, cancel, started)
        except self._errors.DockerException as exc:
            raise SandboxError(f"docker failed while running step {step.name!r}: {exc}") from exc
        finally:
            self._remove(container)

    # -- services ------------------------------------------------------------

    def _start_services(
        self,
        step: Step,
        label: str,
        started_ones: list[tuple[Service, str]],
        cancel: threading.Event,
        started: float,
    ) -> StepResult | None:
        """Create, start and wait for each service, appending to ``started_ones``.

        Returns a result when the step ends here (cancelled, step timeout);
        raises SandboxError when a service cannot start or is not ready.
        """
        deadline = started + step.timeout if step.timeout and step.timeout > 0 else float("inf")
        for service in step.services:
            network = (
                f"container:{started_ones[0][1]}"
                if started_ones
                else ("bridge" if step.network else "none")
            )
            container = self._create_service(step, service, label, network)
            started_ones.append((service, container))
            self.api.start(container)
        for service, container in started_ones:
            ended = self._wait_ready(step, service, container, cancel, deadline)
            if ended is not None:
                return ended
        return None

    def _create_service(self, step: Step, service: Service, label: str, network: str) -> str:
        host_config = self.api.create_host_config(
            network_mode=network,
            pids_limit=self.default_processes,
            init=True,
            security_opt=["no-new-privileges"],
            # Kept by the daemon (capped) so the output can go into the step's log.
            log_config={"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
        )
        match = _LABEL.match(label)
        name = re.sub(r"[^a-zA-Z0-9_.-]", "_", f"{self.owner}-{label}-{service.name}")[:200]
        try:
            created = self.api.create_container(
                service.image,
                command=list(service.command) or None,
                environment=dict(service.env),
                labels={
                    "sauci.owner": self.owner,
                    "sauci.build": match.group(1) if match else "",
                    "sauci.step": step.name,
                    "sauci.label": label,
                    "sauci.service": service.name,
                },
                name=f"{name}-{secrets.token_hex(4)}",
                host_config=host_config,
                stdin_open=False,
                tty=False,
                use_config_proxy=False,
            )
        except self._errors.ImageNotFound as exc:
            raise SandboxError(
                f"image {service.image!r} of service {service.name!r} is not available "
                "to the docker daemon"
            ) from exc
        except self._errors.DockerException as exc:
            raise SandboxError(f"cannot create service {service.name!r}: {exc}") from exc
        return str(created["Id"])

    def _wait_ready(
        self,
        step: Step,
        service: Service,
        container: str,
        cancel: threading.Event,
        step_deadline: float,
    ) -> StepResult | None:
        """Run ``service.ready`` in the service's container until it exits 0."""
        if service.ready is None:
            return None
        give_up = time.monotonic() + service.ready_timeout
        exec_id: str | None = None
        while True:
            if cancel.is_set():
                return StepResult(exit_code=None, ended_by=EndedBy.CANCELLED, reason="cancelled")
            now = time.monotonic()
            if now >= step_deadline:
                return StepResult(
                    exit_code=None,
                    ended_by=EndedBy.TIMEOUT,
                    reason=f"killed after {step.timeout:g} s timeout "
                    f"(waiting for service {service.name!r})",
                )
            if exec_id is None:
                self._raise_if_exited(service, container)
                try:
                    exec_id = self.api.exec_create(
                        container, ["sh", "-c", service.ready], stdout=False, stderr=False
                    )["Id"]
                    self.api.exec_start(exec_id, detach=True)
                except self._errors.APIError:
                    # It may have exited between the look and the exec (409
                    # "is not running"): say so; anything else is re-raised.
                    self._raise_if_exited(service, container)
                    raise
            else:
                info = self.api.exec_inspect(exec_id)
                if not info.get("Running"):
                    if info.get("ExitCode") == 0:
                        return None
                    exec_id = None  # not yet: try again after a pause
                    if now < give_up:
                        time.sleep(min(0.25, give_up - now))
                        continue
            if time.monotonic() >= give_up:
                raise SandboxError(
                    f"service {service.name!r} not ready after {service.ready_timeout:g} s"
                )
            time.sleep(POLL_INTERVAL)

    def _raise_if_exited(self, service: Service, container: str) -> None:
        state = self.api.inspect_container(container).get("State", {})
        if not state.get("Running"):
            # Docker may still be recording the exit: give it a moment for the code.
            for _ in range(20):
                if state.get("Status") in ("exited", "dead"):
                    break
                time.sleep(0.05)
                state = self.api.inspect_container(container).get("State", {})
            raise SandboxError(
                f"service {service.name!r} exited with code "
                f"{state.get('ExitCode')} before it was ready"
            )

    def _service_log(self, service: Service, container: str, log: LogWriter) -> None:
        """Append the tail of ``service``'s output to the step's log."""
        try:
            data = self.api.logs(container, stdout=True, stderr=True, stream=False)
        except self._errors.DockerException as exc:
            log.write(f"\nsauci: cannot read the log of service {service.name!r}: {exc}\n".encode())
            return
        if isinstance(data, str):
            data = data.encode()
        cut = len(data) > SERVICE_LOG_TAIL
        header = f"\n--- service {service.name!r} ({service.image}) output"
        header += f", last {format_size(SERVICE_LOG_TAIL)} ---\n" if cut else " ---\n"
        log.write(header.encode() + data[-SERVICE_LOG_TAIL:])
        if data and not data.endswith(b"\n"):
            log.write(b"\n")

    def _create(
        self,
        step: Step,
        workspace: Path,
        image: str,
        env: Mapping[str, str],
        label: str,
        limits: Limits,
        network: str | None = None,
    ) -> str:
        memory, processes, cpu = limits.memory, limits.processes, limits.cpu
        workdir = self.workspace_path + (f"/{step.workdir}" if step.workdir else "")
        host_config = self.api.create_host_config(
            binds={str(workspace): {"bind": self.workspace_path, "mode": "rw"}},
            network_mode=network or ("bridge" if step.network else "none"),
            pids_limit=processes,
            mem_limit=memory,
            memswap_limit=memory,  # no swap beyond the limit
            nano_cpus=int(cpu * 1e9) if cpu else None,
            init=True,  # an init as pid 1: signals reach the step, zombies are reaped
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=self.read_only,
            # Writable scratch that is memory (counted in the limit), not the
            # daemon's disk: a step cannot fill the data root.
            tmpfs={"/tmp": f"size={self.tmp_size}", "/var/tmp": f"size={self.tmp_size}"},
            log_config={"type": "none"},  # output comes through attach only
        )
        match = _LABEL.match(label)
        name = re.sub(r"[^a-zA-Z0-9_.-]", "_", f"{self.owner}-{label}")[:200]
        try:
            created = self.api.create_container(
                image,
                command=[*step.shell, step.script()],
                user=f"{self.user[0]}:{self.user[1]}",
                environment=dict(env),
                working_dir=workdir,
                labels={
                    "sauci.owner": self.owner,
                    "sauci.build": match.group(1) if match else "",
                    "sauci.step": step.name,
                    "sauci.label": label,
                },
                name=f"{name}-{secrets.token_hex(4)}",
                host_config=host_config,
                stdin_open=False,
                tty=False,
                use_config_proxy=False,  # exactly the step's env
            )
        except self._errors.ImageNotFound as exc:
            raise SandboxError(f"image {image!r} is not available to the docker daemon") from exc
        except self._errors.DockerException as exc:
            raise SandboxError(f"cannot create a container for step {step.name!r}: {exc}") from exc
        return str(created["Id"])

    def _run(
        self,
        step: Step,
        container: str,
        limits: Limits,
        log: LogWriter,
        cancel: threading.Event,
        started: float,
    ) -> StepResult:
        # Attached before the start, so no output is missed (there are no
        # container logs to fall back on: the log driver is "none").
        sock = self.api.attach_socket(container, params={"stdout": 1, "stderr": 1, "stream": 1})
        try:
            self.api.start(container)
            pids_events = _pids_events_path(self.api.inspect_container(container))
            return self._supervise(step, container, limits, sock, pids_events, log, cancel, started)
        finally:
            sock.close()

    def _supervise(
        self,
        step: Step,
        container: str,
        limits: Limits,
        sock: Any,
        pids_events: Path | None,
        log: LogWriter,
        cancel: threading.Event,
        started: float,
    ) -> StepResult:
        fd = sock.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        buffer = bytearray()
        eof = False
        pids_hits = 0
        deadline = started + step.timeout if step.timeout and step.timeout > 0 else float("inf")
        ended_by: EndedBy | None = None
        kill_at = float("inf")
        killed = False
        flush = getattr(log, "flush", None)
        exit_code: int | None = None
        while True:
            now = time.monotonic()
            if ended_by is None:
                if cancel.is_set():
                    ended_by = EndedBy.CANCELLED
                elif now >= deadline:
                    ended_by = EndedBy.TIMEOUT
                if ended_by is not None:
                    pids_hits = max(pids_hits, _pids_max_hits(pids_events))
                    self._signal(container, "SIGTERM")
                    kill_at = now + self.grace
            if not killed and now >= kill_at:
                self._signal(container, "SIGKILL")
                killed = True
            if not eof:
                if poller.poll(int(POLL_INTERVAL * 1000)):
                    data = os.read(fd, READ_SIZE)
                    if data:
                        buffer += data
                        out = _frames(buffer)
                        if out:
                            log.write(out)  # one write per read: large pieces
                        continue
                    eof = True
                elif flush is not None:
                    flush()
                pids_hits = max(pids_hits, _pids_max_hits(pids_events))
                continue
            # Output is closed; the container may still run (its main
            # process closed stdout). Wait for it, still minding the clock.
            try:
                status = self.api.wait(container, timeout=POLL_INTERVAL * 4)
            except Exception as exc:  # requests' ReadTimeout: still running
                if isinstance(exc, self._errors.NotFound):
                    raise
                continue
            exit_code = int(status.get("StatusCode", -1))
            break
        state = self.api.inspect_container(container).get("State", {})
        return self._result(step, limits, exit_code, state, ended_by, pids_hits, log, started)

    def _signal(self, container: str, sig: str) -> None:
        try:
            self.api.kill(container, signal=sig)
        except self._errors.APIError as exc:  # already stopped
            log.debug("container_signal_failed", container=container, error=str(exc))

    def _result(
        self,
        step: Step,
        limits: Limits,
        code: int | None,
        state: Mapping[str, Any],
        ended_by: EndedBy | None,
        pids_hits: int,
        log: LogWriter,
        started: float,
    ) -> StepResult:
        exit_code, sig = code, None
        # docker-init exits 128 + n when the step was killed by signal n.
        if code is not None and 128 < code <= 128 + 64:
            exit_code, sig = None, code - 128
        reason: str | None = None
        if ended_by is EndedBy.TIMEOUT:
            reason = f"killed after {step.timeout:g} s timeout"
        elif ended_by is EndedBy.CANCELLED:
            reason = "cancelled"
        if (code != 0 or ended_by is not None) and ended_by is not EndedBy.CANCELLED:
            cause: tuple[EndedBy, str] | None = None
            if state.get("OOMKilled") and limits.memory:
                at = format_size(limits.memory)
                cause = (EndedBy.OUT_OF_MEMORY, f"out of memory at {at} limit")
            elif pids_hits > 0:
                cause = (EndedBy.PROCESS_LIMIT, f"process limit of {limits.processes} reached")
            if cause is not None:
                ended_by = cause[0]
                reason = cause[1] if reason is None else f"{cause[1]}; {reason}"
        return StepResult(
            exit_code=exit_code,
            signal=sig,
            duration=time.monotonic() - started,
            ended_by=ended_by,
            reason=reason,
            log_truncated=log.exceeded,
        )

    def _remove(self, container: str) -> None:
        for attempt in range(3):
            try:
                self.api.remove_container(container, force=True)
                return
            except self._errors.NotFound:
                return
            except self._errors.DockerException as exc:
                if attempt == 2:
                    log.error("container_remove_failed", container=container, error=str(exc))
                time.sleep(0.2)


def _frames(buffer: bytearray) -> bytes:
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


def _pids_events_path(info: Mapping[str, Any]) -> Path | None:
    """The container's ``pids.events`` on this host, when the daemon runs here."""
    pid = info.get("State", {}).get("Pid")
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "pids" in ctrls.split(","):
            candidate = Path("/sys/fs/cgroup/pids") / path.lstrip("/") / "pids.events"
        elif ctrls == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "pids.events"
        else:
            continue
        if candidate.exists():
            return candidate
    return None


def _pids_max_hits(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
