"""``sauci worker --idle-exit SECONDS``: a worker with no build running for that long
stops itself as SIGTERM would stop it (a warm shutdown), so that latent workers
started on demand go away when the work is done."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from sauci._logging import get_logger

__all__ = ["exit_when_idle"]

log = get_logger(__name__)


def exit_when_idle(runtime: Any, seconds: float) -> threading.Thread:
    """Watch ``runtime`` (a WorkerRuntime); SIGTERM this process once it was idle ``seconds``."""
    check = min(1.0, seconds / 4)

    def watch() -> None:
        while runtime.state == "online":
            idle = runtime.idle_for()
            if idle >= seconds:
                log.info("worker_idle_exit", worker=runtime.name, idle_seconds=round(idle, 1))
                os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown
                return
            threading.Event().wait(min(check, seconds - idle))

    thread = threading.Thread(target=watch, name="sauci-idle-exit", daemon=True)
    thread.start()
    return thread
