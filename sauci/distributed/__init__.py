"""Builds on other machines: a Celery broker carries build ids to `sauci worker` processes.

The store stays the single source of truth: the server (its CeleryRunner)
decides which builds to send and which workers are lost; a worker claims a
build by id in the store, runs it with the LocalRunner and reports there.
The broker only carries "build N is ready for a worker with labels L".

Celery is imported only by this package, and only when a broker is set:
``import sauci`` and ``sauci run`` never pay for it. See docs/distributed.md.
"""

from __future__ import annotations

from sauci.distributed._app import (
    BrokerClient,
    check_broker_url,
    check_connection,
    make_app,
    safe_url,
    thread_pool,
)
from sauci.distributed._ended import Announcer, announce_end
from sauci.distributed._launcher import (
    Autoscaler,
    LaunchingRunner,
    ProcessLauncher,
    WorkerLauncher,
    launching,
)
from sauci.distributed._queues import own_queue, queue_name, worker_queues
from sauci.distributed._runner import CeleryRunner
from sauci.distributed._slots import SlotMirrorSource, slot_sources
from sauci.distributed._worker import WorkerRuntime, worker_cgroup_prefix

__all__ = [
    "Announcer",
    "Autoscaler",
    "BrokerClient",
    "CeleryRunner",
    "LaunchingRunner",
    "ProcessLauncher",
    "SlotMirrorSource",
    "WorkerLauncher",
    "WorkerRuntime",
    "announce_end",
    "check_broker_url",
    "check_connection",
    "launching",
    "make_app",
    "own_queue",
    "queue_name",
    "safe_url",
    "slot_sources",
    "thread_pool",
    "worker_cgroup_prefix",
    "worker_queues",
]
