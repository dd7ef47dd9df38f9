"""Reading a ``.sauci.yml`` document: its top-level keys, and each step into a spec.

:class:`Reader` walks the top level and the entries of ``steps``, and hands
each step key to its handler (``_step_keys``). A :class:`StepSpec` (``_spec``)
is one entry of ``steps`` as written: checked key by key but not yet expanded
(matrix) or linked (needs); ``_build`` does that.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sauci.core.pipeline._nodes import INT, TEXT_TAGS, describe, is_null
from sauci.core.pipeline._resources import read_resources
from sauci.core.pipeline._spec import (
    EVENTS,
    STEP_KEYS,
    TOP_KEYS,
    StepSpec,
    name_problem,
    path_problem,
)

# The tests check _STEP_HANDLERS against STEP_KEYS under this module's name.
from sauci.core.pipeline._step_keys import STEP_HANDLERS as _STEP_HANDLERS
from sauci.core.pipeline._step_keys import StepKeyReader
from sauci.core.resources import Resources

__all__ = ["EVENTS", "STEP_KEYS", "TOP_KEYS", "Reader", "StepSpec", "path_problem"]


class Reader(StepKeyReader):
    """Reads the document into the top-level env and step specs."""

    # What the top-level keys say, once document() has read them.
    schedules: tuple[tuple[str, str], ...] = ()  # (cron, branch)
    runs_on: tuple[str, ...] = ()  # worker labels, sorted and unique
    network: bool | None = None  # the pipeline's `network:`, for steps that do not say
    resources: Resources | None = None  # the pipeline's `resources:`, the build's cost

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The top-level env's values with their nodes, to check their expressions.
        self.env_nodes: dict[str, tuple[str, Node]] = {}

    # -- top level --------------------------------------------------------

    def document(self, root: Node | None) -> tuple[dict[str, str], list[StepSpec]]:
        chk = self.chk
        env: dict[str, str] = {}
        specs: list[StepSpec] = []
        if root is None:
            chk.add((1, 1), "the file is empty; expected a mapping with a 'steps' key")
            return env, specs
        if not isinstance(root, MappingNode):
            if chk.visit(root):
                chk.add(root, f"expected a mapping with a 'steps' key, got {describe(root)}")
            return env, specs
        has_steps = False
        for key, key_node, value in chk.items(root, " at the top level"):
            if key == "steps":
                has_steps = True
                specs = self._steps(value)
            elif is_null(value):
                continue  # an empty key means its default
            elif key == "env":
                env = self._env(value, "'env'", self.env_nodes) or {}
            elif key == "version":
                self._version(value)
            elif key == "schedule":
                self._schedule(value)
            elif key == "runs_on":
                self._runs_on(value)
            elif key == "network":
                self.network = self.network_value(value, "'network'")
            elif key == "resources":
                self.resources = read_resources(self, value, "'resources'", self.max_resources)
            else:
                chk.unknown_key(key, key_node, " at the top level", TOP_KEYS)
        if not has_steps:
            chk.add(root, "missing key 'steps': a pipeline needs at least one step")
        return env, specs

    def _schedule(self, node: Node) -> None:
        """``schedule: [{cron: "0 3 * * *", branch: main}, ...]``; branch defaults to main."""
        chk = self.chk
        expected = "a list of {cron: '<5 fields>', branch: <name>}"
        entries = chk.sequence(node, "'schedule'", expected)
        if entries is None:
            return
        schedules: list[tuple[str, str]] = []
        for item in entries.value:
            mapping = chk.mapping(item, "'schedule' entry", expected)
            if mapping is None:
                continue
            cron: str | None = None
            branch = "main"
            has_cron = False
            keys, _ = chk.known_items(mapping, "a 'schedule' entry", ("branch", "cron"))
            for key, _, value in keys:
                if key == "cron":
                    has_cron = True
                    cron = chk.text(value, "'cron'", "a cron expression such as '0 3 * * *'")
                    if cron is not None:
                        from sauci.core.cron import CronSchedule

                        try:
                            CronSchedule.parse(cron)
                        except ValueError as exc:
                            chk.add(value, f"'cron': {exc}")
                            cron = None
                else:
                    branch = chk.text(value, "'branch'", "a branch name") or branch
            if cron is None:
                if not has_cron:
                    chk.add(item, "a 'schedule' entry needs 'cron'")
                continue
            schedules.append((cron, branch))
        self.schedules = tuple(schedules)

    def _runs_on(self, node: Node) -> None:
        """``runs_on: linux`` or ``runs_on: [linux, docker]``: a worker needs every
        label. Labels are case-insensitive: kept in lower case."""
        from sauci.core.labels import MAX_LABELS, label_problem

        labels = self.chk.texts(node, "'runs_on'", "a worker label such as 'linux'")
        if labels is None:
            return
        ok = self.chk.all_valid(labels, label_problem, lambda _, fault: f"'runs_on': {fault}")
        unique = sorted({label.lower() for label, _ in labels})  # case-insensitive
        if len(unique) > MAX_LABELS:
            self.chk.add(
                node,
                f"'runs_on': {len(unique)} labels; no worker can have more than {MAX_LABELS}",
            )
            ok = False
        if ok:
            self.runs_on = tuple(unique)

    def _version(self, node: Node) -> None:
        if self.chk.visit(node) and not (
            isinstance(node, ScalarNode) and node.tag == INT and node.value == "1"
        ):
            self.chk.add(node, f"'version': this SauCI reads version 1, got {describe(node)}")

    def _steps(self, node: Node) -> list[StepSpec]:
        chk = self.chk
        specs: list[StepSpec] = []
        expected = "a list of steps or a mapping of step names to steps"
        if isinstance(node, SequenceNode):
            if not chk.visit(node):
                return specs
            for index, item in enumerate(node.value, 1):
                if isinstance(item, MappingNode):
                    specs.append(self._step(item, index, None))
                elif chk.visit(item):
                    chk.add(
                        item,
                        f"step #{index}: expected a mapping with 'name' and 'run', "
                        f"got {describe(item)}",
                    )
        elif isinstance(node, MappingNode):
            for index, (name, key, value) in enumerate(chk.items(node, " in 'steps'"), 1):
                if isinstance(value, MappingNode):
                    specs.append(self._step(value, index, (name, key)))
                elif chk.visit(value):
                    chk.add(
                        value,
                        f"step {name!r}: expected a mapping with 'run', got {describe(value)}",
                    )
        elif chk.visit(node):
            chk.add(node, f"'steps': expected {expected}, got {describe(node)}")
            return specs
        if not node.value:
            chk.add(node, "'steps' is empty: a pipeline needs at least one step")
        return specs

    # -- one step ---------------------------------------------------------

    def _step(self, node: MappingNode, index: int, key: tuple[str, Node] | None) -> StepSpec:
        chk = self.chk
        label = f"step {key[0]!r}" if key is not None else _peek_name(node) or f"step #{index}"
        spec = StepSpec(node, index, label)
        if key is not None:
            spec.base, spec.name_node = key
            problem = name_problem(key[0])
            if problem:
                chk.add(key[1], f"the step name {key[0]!r} {problem}")
        where = f" in {label}"
        name_key: Node | None = None
        has_run = False
        for name, key_node, value in chk.items(node, where):
            handler = _STEP_HANDLERS.get(name)
            if handler is None:
                chk.unknown_key(name, key_node, where, STEP_KEYS)
                continue
            if name == "name":
                name_key = key_node
            has_run = has_run or name == "run"
            if is_null(value) and name not in ("run", "name"):
                continue  # an empty key means its default
            handler(self, spec, f"{name!r} in {label}", value)
        if not has_run:
            chk.add(node, f"{label} has no 'run': every step needs the command(s) to run")
        if key is None and name_key is None:
            chk.add(node, f"{label} has no 'name': in the list form every step needs one")
        if key is not None and name_key is not None and not spec.has_matrix:
            chk.add(
                name_key,
                f"{label}: the mapping key already names the step; 'name' is only allowed "
                "here with 'matrix', as the pattern for the names of its expansions",
            )
        if spec.has_matrix and spec.matrix_values is not None:
            chk.add(node, f"{label}: 'matrix' and 'matrix_values' cannot be used together")
        return spec


def _peek_name(node: MappingNode) -> str | None:
    """The step's label from its 'name' before the keys are checked one by one."""
    for key, value in node.value:
        if (
            isinstance(key, ScalarNode)
            and key.value == "name"
            and isinstance(value, ScalarNode)
            and value.tag in TEXT_TAGS
        ):
            return f"step {value.value!r}"
    return None
