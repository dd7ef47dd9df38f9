"""Geometry for the inline SVG: status badges, the step graph, and small charts.

Only numbers are computed here; the templates draw them, so every piece of
text (step names, labels) goes through Django's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sauci.core.models import StepRun

__all__ = ["badge", "bar_chart", "dag_layout", "line_chart", "text_width"]

# Approximate advance widths of 11px Verdana (what shields.io measures with),
# enough to size a badge without a font file.
_NARROW = set("fijlrt.,:;!|'I ()[]")
_WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    width = 0.0
    for ch in text:
        if ch in _NARROW:
            width += 3.9
        elif ch in _WIDE:
            width += 10.2
        elif ch.isupper() or ch.isdigit():
            width += 7.5
        else:
            width += 6.6
    return int(width + 0.5)


BADGE_COLORS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "errored": "#ad1457",
    "cancelled": "#6d6d6d",
    "skipped": "#6d6d6d",
    "running": "#1565c0",
    "queued": "#8a6d00",
    "unknown": "#6d6d6d",
}


def badge(label: str, status: str) -> dict[str, Any]:
    """Sizes for a shields-style badge ``label | status``."""
    left = text_width(label) + 10
    right = text_width(status) + 10
    return {
        "label": label,
        "status": status,
        "left": left,
        "right": right,
        "width": left + right,
        "label_x": left * 5,  # text is drawn at scale(.1) for crisp rendering
        "status_x": (left + right / 2) * 10,
        "label_len": (left - 10) * 10,
        "status_len": (right - 10) * 10,
        "color": BADGE_COLORS.get(status, BADGE_COLORS["unknown"]),
    }


NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168, 40, 56, 16, 8


def dag_layout(steps: Sequence[StepRun]) -> dict[str, Any]:
    """Columns by depth (a step sits right of everything it needs), rows in order."""
    by_name = {s.name: s for s in steps}
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in depth:
            return depth[name]
        step = by_name[name]
        parents = [p for p in step.needs if p in by_name and p not in seen]
        d = 1 + max((level(p, seen | {name}) for p in parents), default=-1)
        depth[name] = d
        return d

    for s in steps:
        level(s.name)
    columns: dict[int, list[StepRun]] = {}
    for s in steps:
        columns.setdefault(depth[s.name], []).append(s)
    nodes: dict[str, dict[str, Any]] = {}
    for col, members in columns.items():
        for row, s in enumerate(members):
            x = PAD + col * (NODE_W + GAP_X)
            y = PAD + row * (NODE_H + GAP_Y)
            nodes[s.name] = {
                "step": s,
                "x": x,
                "y": y,
                "cx": x + 12,
                "tx": x + 26,
                "ty": y + NODE_H / 2 + 4,
                "cy": y + NODE_H / 2,
                "label": s.name if len(s.name) <= 20 else s.name[:19] + "…",
            }
    edges = []
    for s in steps:
        for p in s.needs:
            if p in nodes:
                a, b = nodes[p], nodes[s.name]
                x1, y1 = a["x"] + NODE_W, a["y"] + NODE_H / 2
                x2, y2 = b["x"], b["y"] + NODE_H / 2
                mid = (x1 + x2) / 2
                edges.append(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}")
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    rows = max((len(m) for m in columns.values()), default=1)
    height = PAD * 2 + rows * (NODE_H + GAP_Y) - GAP_Y
    return {
        "nodes": list(nodes.values()),
        "edges": edges,
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


CHART_W, CHART_H, CHART_PAD = 560, 160, 32


def line_chart(values: Sequence[float | None], *, unit: str = "s") -> dict[str, Any]:
    """Points of a line chart of ``values`` (oldest first); None values are gaps."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    n = max(len(values) - 1, 1)
    inner_w, inner_h = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD
    points = []
    for i, v in enumerate(values):
        if v is None:
            continue
        x = CHART_PAD + inner_w * i / n
        y = CHART_PAD + inner_h * (1 - v / top)
        points.append((round(x, 1), round(y, 1), v))
    return {
        "width": CHART_W,
        "height": CHART_H,
        "path": " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y, _) in enumerate(points)),
        "points": points,
        "top": top,
        "unit": unit,
        "pad": CHART_PAD,
        "bottom": CHART_H - CHART_PAD,
        "right": CHART_W - CHART_PAD,
        "empty": not points,
    }


def bar_chart(items: Sequence[tuple[str, float]], *, unit: str = "s") -> dict[str, Any]:
    """Horizontal bars (label, value), longest first as given."""
    top = max((v for _, v in items), default=0.0) or 1.0
    bar_h, gap, label_w, w = 18, 6, 200, CHART_W
    bars = []
    for i, (label, value) in enumerate(items):
        y = i * (bar_h + gap)
        bars.append(
            {
                "label": label if len(label) <= 30 else label[:29] + "…",
                "full": label,
                "value": value,
                "y": y,
                "ty": y + 13,
                "w": max(1.0, (w - label_w - 70) * value / top),
            }
        )
    return {
        "bars": bars,
        "width": w,
        "height": max(1, len(items)) * (bar_h + gap),
        "label_w": label_w,
        "bar_h": bar_h,
        "unit": unit,
        "empty": not items,
    }
