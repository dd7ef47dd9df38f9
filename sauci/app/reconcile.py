"""What a ``sauci run`` that was killed left behind, ended by the next one.

``sauci run`` ends its build as cancelled on Ctrl-C, SIGTERM and SIGHUP; a
``kill -9`` (or a crash, or a power cut) leaves the build and its steps
"running" in the store and the steps' processes alive. The next ``sauci
run`` on the same data dir calls :func:`end_lost_runs`: for every running
build whose ``local-<pid>`` runner is gone, the processes of its steps are
ended (the step cgroups of that run, named by its pid) and the build and its
unfinished steps end ``errored: runner lost``. Builds of a server
(``serve:HOST:PID``) are left to that server, which requeues them at its
restart (:meth:`sauci.core.server.Server.recover`).
"""

from __future__ import annotations

from collections.abc import Callable

from sauci._logging import get_logger
from sauci.core.lost import alive, end_lost_build, local_owner
from sauci.core.models import Build, Status
from sauci.typing import Store

__all__ = ["end_lost_runs", "run_cgroup_prefix"]

log = get_logger(__name__)


def run_cgroup_prefix(pid: int) -> str:
    """The step cgroups of the ``sauci run`` (or library runner) with this pid."""
    return f"sauci-run{pid}-"


def _sweep(prefix: str) -> list[str]:
    from sauci.sandbox import sweep

    return sweep(prefix)


def end_lost_runs(store: Store, *, sweep: Callable[[str], list[str]] = _sweep) -> list[Build]:
    """End every running build of a ``local-<pid>`` runner that is gone, and
    its steps' processes; returns the builds ended."""
    ended = []
    for build in store.list_builds(status=Status.RUNNING, limit=1000):
        pid = local_owner(build.claimed_by)
        if pid is None or alive(pid):
            continue
        swept = sweep(run_cgroup_prefix(pid))
        reason = f"runner lost: the process running it (pid {pid}) ended mid-build"
        ended.append(end_lost_build(store, build, reason))
        log.warning("lost_run_ended", build=build.id, pid=pid, cgroups=len(swept))
    return ended
