"""A step's ``services`` in DockerSandbox: their containers started, waited for
(``service.ready`` run inside until it exits 0), and the tail of their output
appended to the step's log.

The first service's container owns the network namespace; the other
services and the step's container join it, so every service is on
``127.0.0.1``, and by its name too: the owner's ``/etc/hosts`` (which the
containers joining its namespace share) maps each service's name to
``127.0.0.1``, as GitLab's aliases and GitHub's service names expect.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sauci.core.logsink import format_size
from sauci.core.models import EndedBy, Step, StepResult
from sauci.core.step_parts import Service
from sauci.exceptions import SandboxError
from sauci.sandbox._docker_daemon import (
    POLL_INTERVAL,
    container_labels,
    container_name,
    create_container,
)
from sauci.sandbox._steps import Job, deadline
from sauci.typing import LogWriter

__all__ = ["SERVICE_LOG_TAIL", "service_log", "start_services"]

SERVICE_LOG_TAIL = 64 * 1024  # bytes of each service's output kept in the step's log


def start_services(
    api: Any,
    errors: Any,
    job: Job,
    started_ones: list[tuple[Service, str]],
    *,
    owner: str,
    pids_limit: int,
) -> StepResult | None:
    """Create, start and wait for each service, appending to ``started_ones``.

    Returns a result when the step ends here (cancelled, step timeout);
    raises SandboxError when a service cannot start or is not ready.
    """
    step = job.step
    step_deadline = deadline(job)
    for service in step.services:
        network = (
            f"container:{started_ones[0][1]}"
            if started_ones
            else ("bridge" if step.network else "none")
        )
        hosts = {} if started_ones else {s.name: "127.0.0.1" for s in step.services}
        container = _create_service(
            api,
            errors,
            step,
            service,
            job.label,
            network,
            owner=owner,
            pids_limit=pids_limit,
            hosts=hosts,
        )
        started_ones.append((service, container))
        api.start(container)
    for service, container in started_ones:
        ended = _wait_ready(api, errors, step, service, container, job.cancel, step_deadline)
        if ended is not None:
            return ended
    return None


def _create_service(
    api: Any,
    errors: Any,
    step: Step,
    service: Service,
    label: str,
    network: str,
    *,
    owner: str,
    pids_limit: int,
    hosts: dict[str, str],
) -> str:
    host_config = api.create_host_config(
        network_mode=network,
        extra_hosts=hosts or None,
        pids_limit=pids_limit,
        init=True,
        security_opt=["no-new-privileges"],
        # Kept by the daemon (capped) so the output can go into the step's log.
        log_config={"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
    )
    return create_container(
        api,
        errors,
        service.image,
        of=f" of service {service.name!r}",
        what=f"service {service.name!r}",
        command=list(service.command) or None,
        environment=dict(service.env),
        labels=container_labels(owner, step.name, label, service.name),
        name=container_name(owner, label, service.name),
        host_config=host_config,
    )


def _wait_ready(
    api: Any,
    errors: Any,
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
            _raise_if_exited(api, service, container)
            try:
                exec_id = api.exec_create(
                    container, ["sh", "-c", service.ready], stdout=False, stderr=False
                )["Id"]
                api.exec_start(exec_id, detach=True)
            except errors.APIError:
                # It may have exited between the look and the exec (409
                # "is not running"): say so; anything else is re-raised.
                _raise_if_exited(api, service, container)
                raise
        else:
            info = api.exec_inspect(exec_id)
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


def _raise_if_exited(api: Any, service: Service, container: str) -> None:
    state = api.inspect_container(container).get("State", {})
    if not state.get("Running"):
        # Docker may still be recording the exit: give it a moment for the code.
        for _ in range(20):
            if state.get("Status") in ("exited", "dead"):
                break
            time.sleep(0.05)
            state = api.inspect_container(container).get("State", {})
        raise SandboxError(
            f"service {service.name!r} exited with code {state.get('ExitCode')} before it was ready"
        )


def service_log(api: Any, errors: Any, service: Service, container: str, log: LogWriter) -> None:
    """Append the tail of ``service``'s output to the step's log."""
    try:
        data = api.logs(container, stdout=True, stderr=True, stream=False)
    except errors.DockerException as exc:
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
