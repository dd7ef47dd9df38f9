"""A step run with ``docker exec`` in a container of the build's pool.

The exec starts a small ``/bin/sh`` prologue as the step's uid, which kills
every process that uid still has in the container and empties /tmp,
/var/tmp and /dev/shm (nothing a step before left may reach this one), then
``exec``s the step's command: the exec's process is the step's, and its
exit status the step's, whatever the step signals (``kill -9 -1`` in a step
ends only its own processes). When the command has ended and the host sees
processes of the step's uid left in the container (its pids cgroup), or
cannot tell (a daemon on another host), a second exec kills them
(``kill -s KILL -1`` as that uid: a process group would miss what called
setsid); a step that left daemons holding its output open is noticed by
its exec's end. Timeout and cancel send SIGTERM to the command (a second
exec), as Docker's init passes a container's SIGTERM on; after the grace
period the container itself is killed, which ends everything in it (an
exec'd process outlives its exec, and a fork bomb leaves no room for
another).

A container is given back for the next step only when the step ended on its
own: not by the clock, not at its memory or process limit (what the kernel
counted would be blamed on the next step), with what it left killed.
Otherwise the next step gets a new one.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from sauci.core.models import StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox._docker_daemon import POLL_INTERVAL
from sauci.sandbox._docker_pool import Held, left_running
from sauci.sandbox._docker_step_watch import PoolStep, StepWatch, run_held
from sauci.sandbox._docker_stream import supervise_stream
from sauci.sandbox._steps import Job

__all__ = ["run_pooled", "step_argv", "wrapper"]

# `kill -s SIG -1`: busybox's sh takes it, dash wants `--` before -1 (and
# busybox refuses that), hence both.
_KILL_ALL = r"""k() { kill -s "$1" -1 2>/dev/null || kill -s "$1" -- -1 2>/dev/null; }
n=0
while k KILL && [ "$n" -lt 100 ]; do n=$((n+1)); done
"""
_PROLOGUE = (
    _KILL_ALL
    + r"""clean() {
  set --
  for f in /tmp/* /tmp/.[!.]* /tmp/..?* /var/tmp/* /var/tmp/.[!.]* /var/tmp/..?* \
    /dev/shm/* /dev/shm/.[!.]* /dev/shm/..?*; do
    case "$f" in %s) continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi
  done
  [ "$#" -eq 0 ] && return
  PATH="/usr/bin:/bin:$PATH" chmod -R u+rwx -- "$@" 2>/dev/null  # rm cannot enter a 000 dir
  PATH="/usr/bin:/bin:$PATH" rm -rf -- "$@" 2>/dev/null
}
clean
echo $$ > /tmp/.sauci-step 2>/dev/null
%s
exec "$@"
"""
)
# What the prologue's own shell sets in its environment; the step gets them
# as given (or not at all).
_SHELL_SET = ("SHLVL", "PWD", "OLDPWD")


def wrapper(env: Mapping[str, str], mounts: Iterable[str] = (), workdir: str | None = None) -> str:
    """The prologue's script for a step given ``env``, in a container with
    ``mounts`` (paths inside): what holds a mount under /tmp or /var/tmp is
    not emptied (``rm -rf`` would go on into the host's directory). With
    ``workdir``, it first goes there (a step agent's step: a ``docker exec``
    is given its directory)."""
    restore = [f"unset {' '.join(_SHELL_SET)}"]
    restore += [f"export {n}={shlex.quote(env[n])}" for n in _SHELL_SET if n in env]
    keep = {"/tmp/.sauci-step"}
    for mount in mounts:
        parts = PurePosixPath(mount).parts
        if len(parts) >= 3 and parts[1] == "tmp":
            keep.add("/tmp/" + parts[2])
        elif len(parts) >= 4 and parts[1:3] == ("var", "tmp"):
            keep.add("/var/tmp/" + parts[3])
    script = _PROLOGUE % ("|".join(shlex.quote(k) for k in sorted(keep)), "; ".join(restore))
    if workdir is not None:
        script = f"cd -- {shlex.quote(workdir)} || exit 126\n" + script
    return script


def step_argv(job: Job, mounts: Iterable[str], workdir: str | None = None) -> list[str]:
    """The step's command under the prologue (see :func:`wrapper`)."""
    return [
        "/bin/sh",
        "-c",
        wrapper(job.env, mounts, workdir),
        "sauci-step",
        *job.step.shell,
        job.step.script(),
    ]


def run_pooled(todo: PoolStep) -> StepResult:
    """Run ``todo``'s job with an exec in a container of its pool; its result."""
    pool, job = todo.pool, todo.job
    api, errors = pool.api, pool.errors
    user = todo.user
    for attempt in range(2):
        held = todo.take()
        try:
            exec_id = api.exec_create(
                held.id,
                step_argv(job, held.mounts),
                user=user,
                environment=dict(job.env),
                workdir=todo.workdir,
            )["Id"]
            break
        except errors.APIError as exc:
            pool.give_back(held, reuse=False)
            # 409: the container is not running (something outside SauCI
            # stopped it between two steps): once more, in a new one.
            if attempt == 0 and getattr(exc, "status_code", None) == 409:
                continue
            name = job.step.name
            raise SandboxError(f"cannot run step {name!r} in its container: {exc}") from exc
    return run_held(todo, held, lambda: _run(todo, held, exec_id))


def _run(todo: PoolStep, held: Held, exec_id: str) -> tuple[StepResult, bool]:
    api, errors, job = todo.pool.api, todo.pool.errors, todo.job
    watch = StepWatch(todo, held)
    sweep = _Sweep(api, errors, held, todo.user)
    wait = _Waiter(api, exec_id)
    try:
        sock = api.exec_start(exec_id, socket=True)
        try:
            code = supervise_stream(
                job,
                sock,
                watch.clock,
                terminate=watch.terminate,
                kill=watch.kill,
                ended=wait,
                quiet=_EndWatch(api, exec_id, sweep),
            )
        finally:
            sock.close()
        if not watch.killed and watch.clock.ended_by is None:  # else its container goes anyway
            sweep.after()
    finally:
        watch.pids.stop()
    result, own = watch.outcome(code, watch.oomed(code))
    return result, own and sweep.clean


class _Sweep:
    """Kills what the step's uid left running in the container, with an exec,
    when the host sees something left or cannot tell; ``clean`` says whether
    that worked."""

    def __init__(self, api: Any, errors: Any, held: Held, user: str) -> None:
        self.api, self.errors, self.held, self.user = api, errors, held, user
        self.done = False
        self.clean = True

    def now(self) -> None:
        self.done = True
        try:
            made = self.api.exec_create(
                self.held.id, ["/bin/sh", "-c", _KILL_ALL + "exit 0"], user=self.user
            )
            self.api.exec_start(made["Id"])
            self.clean = self.api.exec_inspect(made["Id"]).get("ExitCode") == 0
        except self.errors.DockerException:  # at its process limit, or gone
            self.clean = False

    def after(self) -> None:
        if not self.done and left_running(self.held) is not False:
            self.now()


class _EndWatch:
    """While the output stays open and quiet, whether the step's process has
    ended (its daemons hold the output): then they are killed, which closes
    it. Asked at growing intervals (0.1 s to 1 s)."""

    def __init__(self, api: Any, exec_id: str, sweep: _Sweep) -> None:
        self.api, self.exec_id, self.sweep = api, exec_id, sweep
        self.every = 0.1
        self.next = time.monotonic() + self.every

    def __call__(self) -> None:
        now = time.monotonic()
        if self.sweep.done or now < self.next:
            return
        self.every = min(self.every * 1.5, 1.0)
        self.next = now + self.every
        if not self.api.exec_inspect(self.exec_id).get("Running"):
            self.sweep.now()


class _Waiter:
    """The exec's exit code once it has ended (None before): asked after its
    output closed, at first often, then every POLL_INTERVAL."""

    def __init__(self, api: Any, exec_id: str) -> None:
        self.api, self.exec_id = api, exec_id
        self.pause = 0.002

    def __call__(self) -> int | None:
        info = self.api.exec_inspect(self.exec_id)
        if not info.get("Running"):
            code = info.get("ExitCode")
            return 137 if code is None else int(code)  # None: its container was killed
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, POLL_INTERVAL)
        return None
