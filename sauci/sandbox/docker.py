"""DockerSandbox: a build's steps in containers kept for the build, through the
``docker`` Python SDK.

A step runs in a container made for its build (one per
image, network, limits and workspace; steps running at once get one each),
which is removed when the build ends (:meth:`DockerSandbox.build_ended`),
when a step left it unfit, and at :meth:`DockerSandbox.close`. The
container gets the workspace at ``/workspace``, no network unless
``step.network``, pids/memory/cpu limits, no capabilities, a read-only root
with a private /tmp; the step runs as a non-root user. In that container a
step is one line to the step agent started with it (``_docker_agent``: the
host's static busybox, bind-mounted read-only, forks the step as its uid),
a few milliseconds, where a ``docker exec`` costs 60-90 ms; without a static
busybox on the host (or with ``step_agent=False``) each step is a
``docker exec``. Labels
(``sauci.owner``, ``sauci.build``, ``sauci.step``) let
:meth:`DockerSandbox.sweep` remove what a crashed server left.

A step with ``services`` is the exception: it gets a container of its own
(as every step did before), started after its services' containers, in the
network namespace of the first service, so every service is on ``127.0.0.1``.

This module holds the sandbox itself; the work is in private modules:
``_docker_daemon`` (the client, names and labels, signals, removal),
``_docker_pool``, ``_docker_agent``, ``_docker_agent_step`` and
``_docker_exec`` (a build's containers, a step run in one by its agent or
with an exec, both watched by ``_docker_step_watch``), ``_docker_step`` (a step's
own container), ``_docker_services`` (service
containers) and ``_docker_limits`` (limits to docker and back).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import Limits, StepResult
from sauci.core.step_parts import Service
from sauci.exceptions import SandboxError
from sauci.sandbox._docker_agent import StepAgentLost, find_static_busybox
from sauci.sandbox._docker_agent_step import run_with_agent
from sauci.sandbox._docker_daemon import connect, remove_container
from sauci.sandbox._docker_exec import run_pooled
from sauci.sandbox._docker_limits import step_limits
from sauci.sandbox._docker_pool import ContainerPool
from sauci.sandbox._docker_services import SERVICE_LOG_TAIL as SERVICE_LOG_TAIL  # re-exported
from sauci.sandbox._docker_services import service_log, start_services
from sauci.sandbox._docker_step import create_step_container, run_step_container
from sauci.sandbox._docker_step_watch import PoolStep
from sauci.sandbox._handover import forget_hand_over, hand_over, workspace_written
from sauci.sandbox._steps import ISOLATED, Job, StepSandbox

__all__ = ["DockerSandbox", "StepAgentLost"]

log = get_logger(__name__)


class DockerSandbox(StepSandbox):
    """Runs a build's steps in containers kept for the build (see the module's doc).

    ``base_url``: the daemon (``unix:///run/sauci/docker.sock``); None uses
    DOCKER_HOST. ``image``: used when a step names none. ``user``: uid, gid
    inside (without userns-remap also on the host); None means 1000:1000
    when SauCI is root (the workspace is handed to that uid before each step)
    and SauCI's own ids otherwise. ``owner`` is written into every
    container's ``sauci.owner`` label; give each server its own.
    ``step_agent``: run a build's steps by an agent in its container (when
    this host has a static busybox) rather than a ``docker exec`` each.
    """

    capabilities: frozenset[str] = ISOLATED | {"image", "services"}

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
        step_agent: bool = True,
    ) -> None:
        self.api, self._errors = connect(base_url, client)
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
        self._cgroups: tuple[str, str] | bool | None = False  # not asked yet
        self.pool = ContainerPool(
            self.api,
            self._errors,
            owner=owner,
            user=self.user,
            workspace_path=workspace_path,
            tmp_size=tmp_size,
            read_only=read_only,
            # A step as root in the container could signal or read the root
            # agent: its steps go by `docker exec` instead.
            agent=find_static_busybox() if step_agent and self.user[0] != 0 else None,
        )
        if step_agent and self.pool.agent is None:
            why = "steps run as root" if self.user[0] == 0 else "no static busybox on this host"
            log.info("docker_step_agent_unavailable", reason=why)

    def build_ended(self, workspace: Path) -> None:
        """The build in ``workspace`` ended: its containers go (the executor calls this)."""
        forget_hand_over(workspace)
        self.pool.release(workspace)

    def workspace_written(self, workspace: Path) -> None:
        """SauCI wrote into ``workspace`` between steps: the next step's
        hand-over walks it again (the executor calls this)."""
        workspace_written(workspace)

    def close(self) -> None:
        self.pool.close()
        self.api.close()

    def _cgroup_layout(self) -> tuple[str, str] | None:
        """The daemon's cgroup driver and version, asked once (None: unknown)."""
        if self._cgroups is False:
            try:
                info = self.api.info()
                self._cgroups = (str(info["CgroupDriver"]), str(info["CgroupVersion"]))
            except (self._errors.DockerException, KeyError):
                self._cgroups = None
        return self._cgroups if isinstance(self._cgroups, tuple) else None

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

    def _run(self, job: Job) -> StepResult:
        """Run the step in a new container (after its services' containers)."""
        step = job.step
        image = step.image or self.image
        if not image:
            raise SandboxError(f"step {step.name!r} names no image and the sandbox has no default")
        if self.adopt:
            hand_over(job.workspace, *self.user, job.env.get("SAUCI_BUILD_ID"))
        limits = step_limits(step, self.limits, self.default_processes)
        if not step.services:
            run = run_with_agent if self.pool.agent is not None else run_pooled
            return run(PoolStep(self.pool, job, image, limits, self._cgroup_layout(), self.grace))
        services: list[tuple[Service, str]] = []
        try:
            try:
                ended = start_services(
                    self.api,
                    self._errors,
                    job,
                    services,
                    owner=self.owner,
                    pids_limit=self.default_processes,
                )
            except self._errors.DockerException as exc:
                raise SandboxError(f"docker failed while starting services: {exc}") from exc
            if ended is not None:
                return attrs.evolve(ended, duration=time.monotonic() - job.started)
            env = {
                **job.env,
                **{f"SAUCI_SERVICE_{s.env_name}_HOST": "127.0.0.1" for s, _ in services},
            }
            network = f"container:{services[0][1]}"
            return self._run_job(attrs.evolve(job, env=env), image, limits, network)
        finally:
            for service, container in services:
                service_log(self.api, self._errors, service, container, job.log)
            for _, container in services:
                remove_container(self.api, self._errors, container)

    def _run_job(
        self, job: Job, image: str, limits: Limits, network: str | None = None
    ) -> StepResult:
        container = create_step_container(
            self.api,
            self._errors,
            job,
            image,
            limits,
            network,
            owner=self.owner,
            user=self.user,
            workspace_path=self.workspace_path,
            tmp_size=self.tmp_size,
            read_only=self.read_only,
        )
        try:
            return run_step_container(
                self.api,
                self._errors,
                job,
                container,
                limits,
                grace=self.grace,
                cgroups=self._cgroup_layout(),
            )
        except self._errors.DockerException as exc:
            raise SandboxError(
                f"docker failed while running step {job.step.name!r}: {exc}"
            ) from exc
        finally:
            remove_container(self.api, self._errors, container)
