"""The step graph: default needs, validation, and the order steps become ready."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from sauci.exceptions import PipelineError, Problem

__all__ = [
    "check_graph",
    "find_cycle",
    "rerun_closure",
    "resolve_needs",
    "topological_order",
]


class Step(Protocol):
    """What the graph reads of a step (``sauci.core.models.Step`` has it): the
    models build their graph with these functions, so they are not imported here."""

    @property
    def name(self) -> str: ...

    @property
    def needs(self) -> Sequence[str] | None: ...


class Graph(Protocol):
    """What :func:`rerun_closure` reads of a pipeline (``sauci.core.models.Pipeline`` has it)."""

    @property
    def steps(self) -> Sequence[Step]: ...


def resolve_needs(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies; ``needs`` None means the previous step in file order."""
    deps: dict[str, tuple[str, ...]] = {}
    previous: str | None = None
    for step in steps:
        if step.needs is None:
            deps[step.name] = (previous,) if previous is not None else ()
        else:
            deps[step.name] = tuple(step.needs)
        previous = step.name
    return deps


def find_cycle(deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A list of names forming a cycle (first == last), or None.

    Iterative depth-first search: a chain of thousands of steps must not hit
    Python's recursion limit.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        iters = [iter(deps.get(root, ()))]
        colour[root] = grey
        while iters:
            dep = next(iters[-1], None)
            if dep is None:
                colour[path.pop()] = black
                iters.pop()
                continue
            if dep not in colour:
                continue
            if colour[dep] == grey:
                return [*path[path.index(dep) :], dep]
            if colour[dep] == white:
                colour[dep] = grey
                path.append(dep)
                iters.append(iter(deps.get(dep, ())))
    return None


def check_graph(steps: Sequence[Step], *, source: str = "<pipeline>") -> None:
    """Raise PipelineError for duplicate names, unknown needs, or a cycle."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            problems.append(
                Problem(
                    file=source, line=0, column=0, message=f"step name {step.name!r} is used twice"
                )
            )
        seen.add(step.name)
    deps = resolve_needs(steps)
    for name, needs in deps.items():
        for dep in needs:
            if dep not in seen:
                problems.append(
                    Problem(
                        file=source,
                        line=0,
                        column=0,
                        message=f"step {name!r} needs unknown step {dep!r}",
                    )
                )
            elif dep == name:
                problems.append(
                    Problem(file=source, line=0, column=0, message=f"step {name!r} needs itself")
                )
    if not problems:
        cycle = find_cycle(deps)
        if cycle:
            problems.append(
                Problem(
                    file=source,
                    line=0,
                    column=0,
                    message="needs form a cycle: " + " -> ".join(cycle),
                )
            )
    if problems:
        raise PipelineError(problems)


def topological_order(deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Names in an order where every step comes after its needs (stable by input order)."""
    order: list[str] = []
    done: set[str] = set()
    pending = list(deps)
    while pending:
        progressed = False
        for name in list(pending):
            if all(d in done for d in deps[name]):
                order.append(name)
                done.add(name)
                pending.remove(name)
                progressed = True
        if not progressed:
            raise ValueError("cycle in step graph")
    return order


def rerun_closure(pipeline: Graph, failed_names: Iterable[str]) -> set[str]:
    """The steps "rerun failed" runs again: each failed step and every step it
    needs, transitively (its ``needs`` ancestors, the file-order default included).

    Workspaces are not snapshotted, so what a reused step left in its
    workspace (a ``.venv``, a build directory) is not there in the new one:
    the steps that produce it run again instead. Names not in ``pipeline``
    (a step renamed since) are ignored.
    """
    deps = resolve_needs(pipeline.steps)
    closure: set[str] = set()
    todo = [name for name in failed_names if name in deps]
    while todo:  # iterative: a chain of thousands of steps is no recursion
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo.extend(dep for dep in deps[name] if dep in deps and dep not in closure)
    return closure
