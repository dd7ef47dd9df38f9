"""Geometry for the inline SVG: status badges, the step graph, and small charts.

Only numbers are computed here; the templates draw them, so every piece of
text (step names, labels) goes through Django's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from django.utils.html import format_html_join

from sauci.core.models import StepRun

__all__ = ["MAX_EDGE_SLOTS", "badge", "bar_chart", "dag_layout", "line_chart", "text_width"]

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
MAX_EDGE_SLOTS = 20_000  # column slots the drawn edges take, all together


def _depths(steps: Sequence[StepRun]) -> dict[str, int]:
    """Each step's layer: one right of the deepest step it needs (cycles cut).

    Walked with a stack, not by recursion: a pushed chain of steps listed
    before the steps they need is as deep as it is long."""
    by_name = {s.name: s for s in steps}
    depth: dict[str, int] = {}
    for start in by_name:
        if start in depth:
            continue
        # The path from ``start``: each step's needs still to look at and the
        # deepest layer among those looked at; a step on the path is not entered
        # again (a cycle is cut there).
        path, on_path = [start], {start}
        pending = [iter(by_name[start].needs)]
        deepest = [-1]
        while path:
            for parent in pending[-1]:
                if parent not in by_name or parent in on_path:
                    continue
                if parent in depth:
                    deepest[-1] = max(deepest[-1], depth[parent])
                    continue
                path.append(parent)
                on_path.add(parent)
                pending.append(iter(by_name[parent].needs))
                deepest.append(-1)
                break
            else:
                name = path.pop()
                on_path.discard(name)
                pending.pop()
                depth[name] = deepest.pop() + 1
                if deepest:
                    deepest[-1] = max(deepest[-1], depth[name])
    return depth


def _edge_slots(steps: Sequence[StepRun], depth: dict[str, int]) -> tuple[int, int]:
    """(edges drawn, the column slots their chains take) of the graph."""
    edges = slots = 0
    for s in steps:
        for p in s.needs:
            if p in depth and depth[p] < depth[s.name]:
                edges += 1
                slots += depth[s.name] - depth[p]
    return edges, slots


def _layers(
    steps: Sequence[StepRun], depth: dict[str, int], *, edges: bool = True
) -> tuple[list[list[str]], list[list[str]]]:
    """Layers of node keys, with a dummy key ("\0edge:i:k") in each layer a long
    edge passes, ordered by the barycenter of their neighbours (a few sweeps
    down and up, as in Sugiyama's method) to keep crossings few; and each
    edge's chain of keys."""
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
    for s in steps:
        layers[depth[s.name]].append(s.name)
    chains: list[list[str]] = []
    for s in steps if edges else ():
        for p in s.needs:
            if p not in depth or depth[p] >= depth[s.name]:
                continue
            chain = [p]
            for k in range(depth[p] + 1, depth[s.name]):
                key = f"\0edge:{len(chains)}:{k}"
                layers[k].append(key)
                chain.append(key)
            chain.append(s.name)
            chains.append(chain)
    left: dict[str, list[str]] = {}
    right: dict[str, list[str]] = {}
    for chain in chains:
        for a, b in pairwise(chain):
            right.setdefault(a, []).append(b)
            left.setdefault(b, []).append(a)
    for sweep in range(4):
        order = range(1, len(layers)) if sweep % 2 == 0 else range(len(layers) - 2, -1, -1)
        near = left if sweep % 2 == 0 else right
        for i in order:
            ref = layers[i - 1] if sweep % 2 == 0 else layers[i + 1]
            pos = {key: n for n, key in enumerate(ref)}
            here = {key: n for n, key in enumerate(layers[i])}

            def center(
                key: str,
                pos: dict[str, int] = pos,
                here: dict[str, int] = here,
                near: dict[str, list[str]] = near,
            ) -> float:
                seen = [pos[k] for k in near.get(key, ()) if k in pos]
                return sum(seen) / len(seen) if seen else float(here[key])

            layers[i].sort(key=center)
    return layers, chains


def dag_layout(steps: Sequence[StepRun]) -> dict[str, Any]:
    """A layered drawing: a step sits one column right of the deepest step it
    needs; an edge that spans columns runs through a free slot of each column
    it passes (a dummy node), so no edge crosses a node."""
    depth = _depths(steps)
    # Each edge takes a slot in every column it spans: a pushed pipeline of
    # 990 steps that each need all before them is 475,200 edges and millions
    # of slots, minutes of the web server's CPU at each visit. Past the bound
    # the nodes are drawn, the edges are not, and the page says so.
    count, slots = _edge_slots(steps, depth)
    drawn = slots <= MAX_EDGE_SLOTS
    layers, chains = _layers(steps, depth, edges=drawn)
    by_name = {s.name: s for s in steps}
    slot: dict[str, tuple[float, float]] = {}  # key -> (x, y) of its box
    nodes = []
    for col, keys in enumerate(layers):
        for row, key in enumerate(keys):
            x = PAD + col * (NODE_W + GAP_X)
            y = PAD + row * (NODE_H + GAP_Y)
            slot[key] = (x, y)
            s = by_name.get(key)
            if s is None:
                continue
            nodes.append(
                {
                    "step": s,
                    "x": x,
                    "y": y,
                    "cx": x + 12,
                    "tx": x + 26,
                    "ty": y + NODE_H / 2 + 4,
                    "cy": y + NODE_H / 2,
                    "label": s.name if len(s.name) <= 20 else s.name[:19] + "…",
                }
            )
    edges = []
    for chain in chains:
        parts = []
        for n, (a, b) in enumerate(pairwise(chain)):
            (ax, ay), (bx, by) = slot[a], slot[b]
            x1, y1 = ax + NODE_W, ay + NODE_H / 2
            x2, y2 = bx, by + NODE_H / 2
            mid = (x1 + x2) / 2
            if n == 0:
                parts.append(f"M{x1},{y1}")
            parts.append(f"C{mid},{y1} {mid},{y2} {x2},{y2}")
            if b.startswith("\0"):  # straight through the free slot
                parts.append(f"L{x2 + NODE_W},{y2}")
        edges.append(" ".join(parts))
    width = PAD * 2 + len(layers) * (NODE_W + GAP_X) - GAP_X
    rows = max((len(keys) for keys in layers), default=1)
    height = PAD * 2 + rows * (NODE_H + GAP_Y) - GAP_Y
    return {
        "nodes": nodes,
        "edges": edges,
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
        "edges_omitted": 0 if drawn else count,
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
        # The points' marks made here, escaped by format_html_join: a loop of
        # template nodes and floatformat per point was most of the analytics
        # page's time (about 450 points).
        "marks": format_html_join(
            "\n",
            '<circle class="pt" cx="{}" cy="{}" r="2.5"><title>{}{}</title></circle>',
            ((x, y, _one_decimal(v), unit) for x, y, v in points),
        ),
        "top": top,
        "unit": unit,
        "pad": CHART_PAD,
        "bottom": CHART_H - CHART_PAD,
        "right": CHART_W - CHART_PAD,
        "empty": not points,
    }


def _one_decimal(value: float) -> str:
    """As ``floatformat:"-1"``: one decimal, none when it is 0 (``34``, ``34.3``)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


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
