"""Where a build's time went, as geometry for an inline SVG Gantt chart: the
build's wait in the queue, its setup (claim, checkout, pipeline load: until
the first step starts), and per step the wait for a free slot once its needs
had finished, then its run. Numbers only; the template draws and escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sauci.core.models import Build, StepRun

__all__ = ["timeline_layout"]

LABEL_W, BAR_W, ROW_H, BAR_H, PAD, AXIS_H = 180, 560, 24, 14, 8, 22
KINDS = {"queue": "waiting in the queue", "setup": "setting up", "wait": "waiting for a slot"}


def _nice_step(span: float) -> float:
    """A round tick interval giving about 5 ticks over ``span`` seconds."""
    for step in (
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        14400,
    ):
        if span / step <= 6:
            return float(step)
    return 28800.0


def _ready_at(step: StepRun, ends: dict[str, float], first_start: float | None) -> float | None:
    """When a step could have started: its needs' last end, else the first step's start."""
    times = [ends[n] for n in step.needs if n in ends]
    if times:
        return max(times)
    return first_start


def timeline_layout(build: Build, steps: Sequence[StepRun], now: float) -> dict[str, Any] | None:
    """Rows of bars (kind, x, width, seconds) on one time axis, or None when
    nothing has started."""
    started = [s.started_at for s in steps if s.started_at]
    if not started and not build.started_at:
        return None
    # The earliest known time (clocks of different machines may disagree).
    origin = min(t for t in (build.queued_at, build.started_at, *started) if t)
    first_start = min(started, default=None)
    ends = {s.name: s.finished_at or now for s in steps if s.started_at}
    end = max([build.finished_at or now, *ends.values()])
    span = max(end - origin, 1e-3)
    scale = BAR_W / span

    def bar(kind: str, a: float | None, b: float | None) -> dict[str, Any] | None:
        if a is None or b is None or b <= a:
            return None
        x = LABEL_W + (a - origin) * scale
        return {"kind": kind, "x": round(x, 1), "w": round(max(1.0, (b - a) * scale), 1),
                "seconds": b - a, "what": KINDS.get(kind, "running")}  # fmt: skip

    rows: list[dict[str, Any]] = []
    build_bars = [
        bar("queue", build.queued_at, build.started_at or (None if build.status.done else now)),
        bar("setup", build.started_at, first_start or (None if build.status.done else now)),
    ]
    rows.append({"label": f"build #{build.id}", "step": None, "bars": [b for b in build_bars if b]})
    for s in steps:
        ready = _ready_at(s, ends, first_start)
        bars = [
            bar("wait", ready, s.started_at),
            bar(f"run st-{s.status.value}", s.started_at, s.finished_at or (s.started_at and now)),
        ]
        label = s.name if len(s.name) <= 24 else s.name[:23] + "…"
        rows.append({"label": label, "step": s, "bars": [b for b in bars if b]})
    for i, row in enumerate(rows):
        row["y"] = AXIS_H + PAD + i * ROW_H
        row["ty"] = AXIS_H + PAD + i * ROW_H + BAR_H - 2
    tick = _nice_step(span)
    ticks = []
    for k in range(int(span / tick + 1e-9) + 1):
        t = round(k * tick, 3)
        ticks.append({"x": round(LABEL_W + t * scale, 1), "label": _tick_label(t)})
    return {
        "rows": rows,
        "ticks": ticks,
        "width": LABEL_W + BAR_W + PAD * 4,
        "height": AXIS_H + PAD * 2 + len(rows) * ROW_H,
        "bar_h": BAR_H,
        "label_w": LABEL_W,
        "axis_y": AXIS_H,
    }


def _tick_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}"
    if seconds >= 60:
        return (
            f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
            if seconds % 60
            else f"{int(seconds // 60)}m"
        )
    return f"{seconds:g}s"
