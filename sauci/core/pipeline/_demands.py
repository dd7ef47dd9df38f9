"""Each step's demands on its sandbox (:mod:`sauci.core.demands`), located in the file.

Run after the steps are built: a problem points at the key that asks
(``services:``, ``image:``, ``network:``, ``limits: memory:``), once per
entry of ``steps`` however many matrix expansions it has.
"""

from __future__ import annotations

from collections.abc import Sequence

from yaml.nodes import MappingNode, Node, ScalarNode

from sauci.core.demands import SandboxCapabilities, demand_message, unmet_demands
from sauci.core.models import Step
from sauci.core.pipeline._nodes import Checker
from sauci.core.pipeline._spec import StepSpec

__all__ = ["check_demands"]


def check_demands(
    chk: Checker, specs: Sequence[StepSpec], steps: Sequence[Step], sandboxes: SandboxCapabilities
) -> None:
    """Add a problem for each thing a step asks that its sandbox cannot give.

    ``steps`` are ``specs``' expansions in order (``build_steps`` makes them so).
    """
    owners = [spec for spec in specs for _ in spec.expanded]
    for spec, step in zip(owners, steps, strict=True):
        sandbox, unmet = unmet_demands(step, sandboxes)
        for demand in unmet:
            message = demand_message(
                spec.label, sandbox, demand, sandboxes, named=step.sandbox is not None
            )
            chk.add(_locate(spec.node, demand.key), message)


def _locate(node: Node, path: tuple[str, ...]) -> Node:
    """The key node at ``path`` in a step's mapping, or the nearest one found."""
    for part in path:
        found = _key(node, part) if isinstance(node, MappingNode) else None
        if found is None:
            return node
        key, value = found
        if part == path[-1] or not isinstance(value, MappingNode):
            return key
        node = value
    return node


def _key(node: MappingNode, name: str) -> tuple[Node, Node] | None:
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None
