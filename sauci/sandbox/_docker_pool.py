"""The containers DockerSandbox runs a build's steps in, kept for the build.

A container is made for the first step that needs one of its kind: the same
build, workspace, image, network, limits and mounts (everything fixed when a
container is made); later steps of that kind take it again, each with one
``docker exec``, or, when the pool has a step agent (``_docker_agent``: the
host's static busybox), with one line to the agent started with the
container. A step has its container to itself while it runs: steps
running at the same time get one each. What runs as pid 1 is Docker's init
with the agent (root, with only CAP_SETUID and CAP_SETGID) or a keeper
(``sleep`` in a loop) under a uid of its own, which the step's uid may not
signal. A container is removed when its step left it unfit
(:meth:`ContainerPool.give_back` with ``reuse=False``), when its build ends
(:meth:`ContainerPool.release`) and when the sandbox is closed.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import Limits
from sauci.sandbox._docker_agent import AGENT_PATH, agent_entrypoint, await_ready
from sauci.sandbox._docker_daemon import (
    container_labels,
    container_name,
    create_container,
    remove_container,
)
from sauci.sandbox._docker_limits import (
    container_memory_dir,
    container_pids_dir,
    host_limits,
    prepare_pids_dir,
    remove_pids_dir,
)
from sauci.sandbox._docker_step import step_binds
from sauci.sandbox._steps import Job

__all__ = ["KEEPER", "ContainerPool", "Held", "left_running", "oom_kills"]

log = get_logger(__name__)

# pid 1's child: sleeps until the container is removed. Images need a
# /bin/sh and a `sleep` ("infinity" is not every sleep's).
KEEPER = "while :; do sleep 86400; done"
AGENT_START = 30.0  # seconds a started agent has to say it is ready
_BUILD = re.compile(r"^b(\d+)-")


@attrs.define(eq=False)
class Held:
    """One container of the pool, with where its counters are on this host."""

    id: str
    key: tuple[object, ...]
    workspace: str
    pids_dir: Path | None
    prepared: Path | None  # the pids cgroup SauCI made for it (cgroupfs)
    memory_dir: Path | None
    mounts: tuple[str, ...]  # where binds are, inside
    main_pid: int | None  # pid 1's, on this host
    sock: Any = None  # the agent's stdin and output (attached), when there is one


class ContainerPool:
    """A build's containers, by kind; see the module's doc."""

    def __init__(
        self,
        api: Any,
        errors: Any,
        *,
        owner: str,
        user: tuple[int, int],
        workspace_path: str,
        tmp_size: int,
        read_only: bool,
        agent: str | None = None,
    ) -> None:
        self.api, self.errors = api, errors
        self.agent = agent  # the host's static busybox, or None: a docker exec per step
        self.owner = owner
        self.user = user
        # The keeper's uid: not the step's, so that the step cannot end it.
        self.keeper = 65534 if user[0] != 65534 else 65533
        self.workspace_path = workspace_path
        self.tmp_size = tmp_size
        self.read_only = read_only
        self._idle: dict[tuple[object, ...], list[Held]] = {}
        self._all: dict[str, Held] = {}
        self._lock = threading.Lock()

    def take(self, job: Job, image: str, limits: Limits, cgroups: tuple[str, str] | None) -> Held:
        """An idle container for ``job``'s kind, else a new one (started)."""
        network = "bridge" if job.step.network else "none"
        binds = step_binds(job, self.workspace_path, self.user)
        match = _BUILD.match(job.label)
        build = match.group(1) if match else ""
        key = (
            build,
            str(job.workspace),
            image,
            network,
            limits,
            tuple(sorted((k, v["bind"], v["mode"]) for k, v in binds.items())),
        )
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        held = self._start(job, image, limits, network, binds, key, cgroups)
        if held.sock is not None:
            ready, said = await_ready(held.sock, AGENT_START)
            if not ready:
                # The daemon cannot run the host's busybox (it runs on another
                # host, where that path is not the same file): docker exec from now on.
                log.warning(
                    "docker_step_agent_unusable",
                    agent=self.agent,
                    said=said[-500:].decode(errors="replace"),
                )
                self.agent = None
                self._remove_now(held)
                held = self._start(job, image, limits, network, binds, key, cgroups)
        with self._lock:
            self._all[held.id] = held
        return held

    def give_back(self, held: Held, *, reuse: bool) -> None:
        """The step in ``held`` is over: keep it for the next one, or remove it."""
        if reuse:
            with self._lock:
                if held.id in self._all:
                    self._idle.setdefault(held.key, []).append(held)
                    return
        self._remove([held])

    def release(self, workspace: Path) -> list[str]:
        """Remove the containers bound to ``workspace`` (a build's, or a matrix
        entry's copy, which the executor ends on its own); their ids."""
        root = str(workspace)
        with self._lock:
            gone = [h for h in self._all.values() if h.workspace == root]
        self._remove(gone)
        return [h.id for h in gone]

    def close(self) -> None:
        with self._lock:
            every = list(self._all.values())
        self._remove(every)

    def _remove_now(self, held: Held) -> None:
        if held.sock is not None:
            with contextlib.suppress(OSError):
                held.sock.close()
        remove_container(self.api, self.errors, held.id)
        remove_pids_dir(held.prepared)

    def _remove(self, held: list[Held]) -> None:
        with self._lock:
            for h in held:
                self._all.pop(h.id, None)
                idle = self._idle.get(h.key)
                if idle and h in idle:
                    idle.remove(h)
        for h in held:
            if h.sock is not None:
                with contextlib.suppress(OSError):
                    h.sock.close()
            remove_container(self.api, self.errors, h.id)
            remove_pids_dir(h.prepared)

    def _start(
        self,
        job: Job,
        image: str,
        limits: Limits,
        network: str,
        binds: dict[str, dict[str, str]],
        key: tuple[object, ...],
        cgroups: tuple[str, str] | None,
    ) -> Held:
        api, errors = self.api, self.errors
        if self.agent is not None:
            runs: dict[str, Any] = {
                "entrypoint": agent_entrypoint(*self.user),
                "user": "0:0",  # the agent's: it becomes the step's uid for each step
                "stdin_open": True,
            }
            caps = {"cap_add": ["SETUID", "SETGID"]}
            mounts = {**binds, self.agent: {"bind": AGENT_PATH, "mode": "ro"}}
        else:
            # The keeper, not the image's entrypoint (which would wrap it).
            runs = {
                "entrypoint": ["/bin/sh", "-c", KEEPER],
                "user": f"{self.keeper}:{self.keeper}",
            }
            caps, mounts = {}, binds
        host_config = api.create_host_config(
            binds=mounts,
            network_mode=network,
            **host_limits(limits),
            init=True,  # pid 1 reaps what the steps orphan
            cap_drop=["ALL"],
            **caps,
            security_opt=["no-new-privileges"],
            read_only=self.read_only,
            # Writable scratch that is memory (counted in the limit), not the
            # daemon's disk; emptied after each step (see _docker_exec).
            tmpfs={"/tmp": f"size={self.tmp_size}", "/var/tmp": f"size={self.tmp_size}"},
            log_config={"type": "none"},
        )
        container = create_container(
            api,
            errors,
            image,
            of="",
            what=f"a container for step {job.step.name!r}",
            **runs,
            environment={},  # each step's environment comes with its exec
            working_dir=self.workspace_path,
            labels={**container_labels(self.owner, job.step.name, job.label), "sauci.pool": "1"},
            name=container_name(self.owner, job.label),
            host_config=host_config,
        )
        prepared = prepare_pids_dir(cgroups, container)
        sock = None
        try:
            if self.agent is not None:  # attached before the start: nothing is missed
                sock = api.attach_socket(
                    container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                )
            api.start(container)
            info = api.inspect_container(container)
        except BaseException:
            if sock is not None:
                sock.close()
            remove_container(api, errors, container)
            remove_pids_dir(prepared)
            raise
        found = container_pids_dir(info)
        return Held(
            id=container,
            key=key,
            workspace=str(job.workspace),
            pids_dir=found if found is not None else prepared,
            prepared=prepared,
            memory_dir=container_memory_dir(info),
            mounts=tuple(b["bind"] for b in binds.values()),
            main_pid=info.get("State", {}).get("Pid") or None,
            sock=sock,
        )


def oom_kills(memory_dir: Path | None) -> int | None:
    """How many processes the kernel's OOM killer has ended in the cgroup."""
    if memory_dir is None:
        return None
    for name in ("memory.events", "memory.oom_control"):
        with contextlib.suppress(OSError):
            for line in (memory_dir / name).read_text(encoding="ascii").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return None


def left_running(held: Held) -> bool | None:
    """Whether a process of another uid than pid 1's (the keeper's: so, of a
    step) runs in the container; None when this host cannot tell."""
    if held.pids_dir is None or held.main_pid is None:
        return None
    try:
        keeper = _uid(held.main_pid)
        procs = (held.pids_dir / "cgroup.procs").read_text(encoding="ascii").split()
    except (OSError, ValueError):
        return None
    for pid in procs:
        try:
            if _uid(int(pid)) != keeper:
                return True
        except (OSError, ValueError):  # ended meanwhile
            continue
    return False


def _uid(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise ValueError(f"no Uid for {pid}")
