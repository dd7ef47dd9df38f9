"""Where the time between two builds goes: the phases of the scheduling path
of `sauci serve`, measured from its events (sauci.core.events) and from
timed server rounds, for benchmarks/bench_scheduling.py --phases.

Load on a shared machine stretches wall times; these per-phase medians (and
the CPU time the server spends per build) show which part grew.
"""

from __future__ import annotations

import bisect
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sauci.core.events import subscribe


class Phases:
    """Timestamps of each build's events, and the length of each server round."""

    def __init__(self) -> None:
        self.at: dict[int, dict[str, float]] = defaultdict(dict)
        self.rounds: list[float] = []
        self.first_wave: list[float] = []
        self._lock = threading.Lock()
        self._unsubscribe = subscribe(self._on_event)
        self._cpu = (0.0, 0.0)

    def _on_event(self, name: str, fields: dict[str, Any]) -> None:
        now = time.time()
        build = fields.get("build")
        with self._lock:
            if build is not None and name not in self.at[build.id]:
                self.at[build.id][name] = now
            if name == "build_started" and build is not None:
                self.at[build.id]["claimed"] = build.started_at or now

    def time_rounds(self, server: Any) -> None:
        """Time each of ``server``'s rounds (its ``tick``)."""
        tick: Callable[[], None] = server.tick

        def timed() -> None:
            start = time.perf_counter()
            try:
                tick()
            finally:
                self.rounds.append(time.perf_counter() - start)

        server.tick = timed

    def note_round(self, slots: int) -> None:
        """After a round of builds: how long its first ``slots`` builds took to start their steps."""
        with self._lock:
            fresh = [at for at in self.at.values() if not at.get("noted")]
            for at in fresh:
                at["noted"] = 1.0
        queued = sorted(at["build_queued"] for at in fresh if "build_queued" in at)
        started = sorted(at["step_started"] for at in fresh if "step_started" in at)
        if queued and len(started) >= slots:
            self.first_wave.append(started[slots - 1] - queued[0])

    def reset(self) -> None:
        with self._lock:
            self.at.clear()
            self.rounds.clear()
            self.first_wave.clear()
        self._cpu = _cpu()

    def cpu(self) -> tuple[float, float]:
        """CPU seconds since :meth:`reset`: this process (server, builds' threads), its children."""
        own, children = _cpu()
        return own - self._cpu[0], children - self._cpu[1]

    def report(self, builds: int) -> list[str]:
        phases: dict[str, list[float]] = defaultdict(list)
        ends = sorted(at["step_finished"] for at in self.at.values() if "step_finished" in at)
        for at in self.at.values():
            pairs = [
                ("enqueue -> claimed", "build_queued", "claimed"),
                ("claimed -> build_started (workspace, pipeline)", "claimed", "build_started"),
                ("build_started -> step_started", "build_started", "step_started"),
                ("step_started -> step_finished (sleep 0.5)", "step_started", "step_finished"),
                ("step_finished -> build_finished", "step_finished", "build_finished"),
                ("build_finished -> runner_slot_free", "build_finished", "runner_slot_free"),
            ]
            for label, a, b in pairs:
                if a in at and b in at:
                    phases[label].append(at[b] - at[a])
            # The gap a slot sat idle: the last step end before this build's
            # claim (the one that freed its slot) to this build's step start.
            claimed, started = at.get("claimed"), at.get("step_started")
            i = bisect.bisect_right(ends, claimed) if claimed else 0
            if claimed and started and i and claimed - ends[i - 1] < 0.4:
                phases["a step's end -> the next build's step start"].append(started - ends[i - 1])
        lines = []
        if self.first_wave:
            phases["first enqueue -> first wave's steps started"] = self.first_wave
        for label, values in phases.items():
            lines.append(
                f"  {label:<48} median {statistics.median(values) * 1000:7.1f} ms"
                f"  max {max(values) * 1000:7.1f} ms  (n={len(values)})"
            )
        if self.rounds:
            lines.append(
                f"  {'server round (tick)':<48} median {statistics.median(self.rounds) * 1000:7.1f} ms"
                f"  max {max(self.rounds) * 1000:7.1f} ms  (n={len(self.rounds)})"
            )
        own, children = self.cpu()
        lines.append(
            f"  CPU per build: server process {own / builds * 1000:.1f} ms,"
            f" step processes {children / builds * 1000:.1f} ms"
        )
        return lines


def _cpu() -> tuple[float, float]:
    own = time.process_time()
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own, child.ru_utime + child.ru_stime
