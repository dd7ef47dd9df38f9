"""The build page's step graph is drawn in bounded time and memory whatever the
pushed pipeline's `needs` say: a pipeline is the pusher's, and the page is
drawn at each visit."""

from __future__ import annotations

from sauci.contrib.django.svg import MAX_EDGE_SLOTS, dag_layout
from sauci.core.models import Status, StepRun


def _steps(needs: dict[str, list[str]]) -> list[StepRun]:
    return [
        StepRun(build_id=1, name=n, position=i, status=Status.PASSED, needs=tuple(deps))
        for i, (n, deps) in enumerate(needs.items())
    ]


def test_a_chain_written_backwards_is_drawn_without_recursion():
    """Steps listed before the steps they need: a 1,000-step chain recursed
    2,000 frames deep (RecursionError: the build page answered 500)."""
    n = 1000
    needs = {f"s{i}": [f"s{i + 1}"] if i < n - 1 else [] for i in range(n)}
    layout = dag_layout(_steps(needs))
    columns = {node["step"].name: node["x"] for node in layout["nodes"]}
    assert columns["s999"] < columns["s0"] and n - 1 == len(layout["edges"])


def test_a_graph_too_dense_to_draw_is_drawn_without_its_edges():
    """33 matrix steps of 30 entries, each needing all before it, is 7.7 KB of
    YAML and 475,200 edges: drawing each through every column it spans took
    74 s of CPU and 1.7 GB per visit. Past MAX_EDGE_SLOTS the nodes are drawn
    and the page says how many edges it left out."""
    layers = [[f"l{i} (x: {j})" for j in range(30)] for i in range(33)]
    needs = {
        name: [earlier for before in layers[:i] for earlier in before]
        for i, layer in enumerate(layers)
        for name in layer
    }
    layout = dag_layout(_steps(needs))
    assert ([], 475_200, 990) == (layout["edges"], layout["edges_omitted"], len(layout["nodes"]))


def test_a_graph_within_the_bounds_is_drawn_whole():
    needs = {"a": [], "b": ["a"], "c": ["a", "b"]}
    layout = dag_layout(_steps(needs))
    assert (3, 0) == (len(layout["edges"]), layout["edges_omitted"])
    assert MAX_EDGE_SLOTS >= 10_000
