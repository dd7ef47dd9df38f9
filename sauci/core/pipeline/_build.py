"""From step specs to Step keyword arguments: matrix expansion, names, needs, the graph.

Graph problems are found here, located at the needs entry that causes them,
before :class:`~sauci.core.models.Pipeline` runs ``dag.check_graph`` (which
can only say "somewhere in the file").
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node

from sauci.core.paths import safe_name
from sauci.core.pipeline._expressions import check_text, expand_text, expressions_of, locate
from sauci.core.pipeline._nodes import Checker, did_you_mean
from sauci.core.pipeline._spec import StepSpec, name_problem, path_problem

__all__ = ["MAX_STEPS", "build_steps", "find_cycle"]

MAX_STEPS = 1000  # after matrix expansion
_MAX_CYCLES_REPORTED = 10


def build_steps(
    chk: Checker, specs: list[StepSpec], env: dict[str, tuple[str, Node]] | None = None
) -> list[dict[str, Any]]:
    """Step keyword arguments in file order; problems go to ``chk``.

    ``env`` is the top-level env's values with their nodes: no expression is
    available there (it is the same for every step and matrix entry).
    """
    for name, (text, node) in (env or {}).items():
        check_text(chk, text, node, f"the top-level 'env' {name}", {})
    total = 0
    top = {name: text for name, (text, _) in (env or {}).items()}
    for spec in specs:
        _expand(chk, spec, top)
        total += len(spec.expanded)
        if total > MAX_STEPS:
            chk.add(
                spec.node,
                f"the pipeline has more than {MAX_STEPS} steps after matrix expansion",
            )
            return []
    targets = _register(chk, specs)
    edges = _link(chk, specs, targets)
    _report_cycles(chk, specs, edges)
    return [kwargs for spec in specs for kwargs in spec.expanded]


def _texts(spec: StepSpec) -> list[tuple[str, Node, str]]:
    """The step's texts that may hold expressions (besides its env), with their keys."""
    texts: list[tuple[str, Node, str]] = [(line, node, "'run'") for line, node in spec.run or ()]
    if spec.template is not None:
        texts.append((*spec.template, "'name'"))
    if spec.image is not None:
        texts.append((*spec.image, "'image'"))
    if spec.workdir is not None:
        texts.append((*spec.workdir, "'workdir'"))
    for field, globs in spec.globs.items():
        texts.extend((glob, node, f"'{field}'") for glob, node in globs)
    return texts


def _expand(chk: Checker, spec: StepSpec, top: dict[str, str]) -> None:
    """One set of Step arguments per matrix combination (one for a plain step).

    ``${{ matrix.X }}`` and ``${{ env.X }}`` are filled in (sauci.core.expressions):
    in the step's env values from the matrix and the top-level env; elsewhere
    from the matrix and the env the step runs with (top-level, step, matrix).
    """
    if spec.base is None or spec.run is None or (spec.has_matrix and spec.matrix is None):
        return  # already reported; nothing sensible to expand
    matrix = spec.matrix
    if spec.matrix_values is not None:  # dumped expansions keep their text as is
        _expand_one(chk, spec, {}, top, literal=True)
        return
    variables = list(matrix.variables) if matrix is not None else []
    env_names = [*top, *spec.env, *variables]
    top_names = list(top)
    ok = True
    for name, (text, node) in spec.env.items():
        what = f"'env' {name} in {spec.label}"
        ok = check_text(chk, text, node, what, {"matrix": variables, "env": top_names}) and ok
    for text, node, key in _texts(spec):
        what = f"{key} in {spec.label}"
        ok = check_text(chk, text, node, what, {"matrix": variables, "env": env_names}) and ok
    if spec.cache_key is not None:  # hashFiles and the key's form: sauci.core.cache_key
        ok = _check_cache_matrix(chk, spec, variables) and ok
    if not ok:
        return
    combinations: list[dict[str, str]] = [{}] if matrix is None else matrix.combinations
    for combination in combinations:
        _expand_one(chk, spec, combination, top)


def _expand_one(
    chk: Checker,
    spec: StepSpec,
    combination: dict[str, str],
    top_env: dict[str, str],
    *,
    literal: bool = False,
) -> None:
    """The Step arguments of one combination; the expressions are checked already.

    ``literal``: a dumped expansion (``matrix_values``), whose texts are kept
    as written; the checks on the results (paths, names) still apply.
    """
    assert spec.run is not None
    kwargs = dict(spec.fields)
    step_env = {
        name: text if literal else expand_text(text, {"matrix": combination, "env": top_env})
        for name, (text, _) in spec.env.items()
    }
    env = {**step_env, **combination}
    context = {"matrix": combination, "env": {**top_env, **env}}

    def fill(text: str) -> str:
        return text if literal else expand_text(text, context)

    if literal:
        kwargs["name"] = spec.base
    else:
        kwargs["name"] = _expanded_name(spec, combination, context)
    kwargs["run"] = tuple(fill(line) for line, _ in spec.run)
    if spec.image is not None:
        image = fill(spec.image[0])
        if not image.strip():
            chk.add(spec.image[1], f"'image' in {spec.label} is empty")
        kwargs["image"] = image
    if spec.workdir is not None:
        workdir = fill(spec.workdir[0])
        problem = path_problem(workdir)
        if problem:
            chk.add(spec.workdir[1], f"'workdir' in {spec.label}: {workdir!r} {problem}")
        kwargs["workdir"] = workdir
    for field, globs in spec.globs.items():
        expanded = []
        for glob, node in globs:
            text = fill(glob)
            problem = path_problem(text)
            if problem:
                chk.add(node, f"'{field}' in {spec.label}: the pattern {text!r} {problem}")
            expanded.append(text)
        kwargs[field] = tuple(expanded)
    if env:
        kwargs["env"] = env
    if combination:
        kwargs["matrix"] = combination
    elif spec.matrix_values is not None:
        kwargs["matrix"] = spec.matrix_values
    spec.expanded.append(kwargs)


def _expanded_name(
    spec: StepSpec, combination: dict[str, str], context: dict[str, dict[str, str]]
) -> str:
    assert spec.base is not None
    if not combination:
        return expand_text(spec.template[0], context) if spec.template is not None else spec.base
    template = spec.template[0] if spec.template is not None else spec.base
    name = expand_text(template, context)
    if any(e.context == "matrix" for e in expressions_of(template)):
        return name
    return f"{name} ({', '.join(combination.values())})"


def _register(chk: Checker, specs: list[StepSpec]) -> dict[str, list[str]]:
    """What each name in ``needs`` stands for: itself, or all of a matrix's expansions."""
    targets: dict[str, list[str]] = {}
    first: dict[str, tuple[StepSpec, int]] = {}
    # A step's log file and artifact folder are named by safe_name(name):
    # two names that differ only in other characters ("a b", "a_b", "a.")
    # wrote one file, so one step's log showed what the other wrote.
    on_disk: dict[str, tuple[str, int]] = {}
    for spec in specs:
        where = spec.template[1] if spec.template is not None else spec.name_node or spec.node
        line = where.start_mark.line + 1
        for kwargs in spec.expanded:
            name = kwargs["name"]
            disk = on_disk.setdefault(safe_name(name), (name, line))
            if disk[0] != name and name not in first:
                chk.add(
                    where,
                    f"step name {name!r} and {disk[0]!r} (line {disk[1]}) would share a log "
                    "file and an artifact folder: names that differ only in characters other "
                    "than letters, digits and . _ - are one on disk; rename one",
                )
            if name in first:
                other, other_line = first[name]
                if other is spec:
                    chk.add(
                        where,
                        f"the names of the expansions of {spec.label} repeat {name!r}; "
                        "use every matrix variable in 'name'",
                    )
                else:
                    chk.add(
                        where,
                        f"step name {name!r} is used twice; the first is on line {other_line}",
                    )
                continue
            first[name] = (spec, line)
            targets[name] = [name]
            if spec.matrix is not None or name != spec.base:  # expanded: check again
                problem = name_problem(name)
                if problem:
                    chk.add(where, f"the step name {name!r} {problem}")
    for spec in specs:
        if spec.matrix is None or spec.base is None or not spec.expanded:
            continue
        owner = first.get(spec.base)
        where = spec.name_node or spec.node
        if owner is not None and owner[0] is not spec:
            chk.add(
                where, f"step name {spec.base!r} is used twice; the first is on line {owner[1]}"
            )
            continue
        first[spec.base] = (spec, where.start_mark.line + 1)
        targets[spec.base] = [kwargs["name"] for kwargs in spec.expanded]
    for spec in specs:
        # A step with problems of its own still exists for the steps that
        # need it: saying "unknown step" as well would only add noise.
        if spec.base is not None and not spec.expanded:
            targets.setdefault(spec.base, [])
    return targets


def _link(
    chk: Checker, specs: list[StepSpec], targets: dict[str, list[str]]
) -> dict[tuple[str, str], Node]:
    """Fill in each expansion's needs; returns the node that wrote each explicit edge."""
    edges: dict[tuple[str, str], Node] = {}
    previous: StepSpec | None = None
    for spec in specs:
        if not spec.expanded:
            previous = None
            continue
        if spec.needs is None:
            _default_needs(spec, previous)
        else:
            _explicit_needs(chk, spec, targets, edges)
        previous = spec
    return edges


def _default_needs(spec: StepSpec, previous: StepSpec | None) -> None:
    """The step before in the file: all of it when either side is a matrix.

    Step.needs None means "the step before me in the list", which is right
    between two plain steps; around a matrix the list neighbour is a single
    expansion, so the needs are written out.
    """
    needs: tuple[str, ...] | None
    if spec.matrix is None and (previous is None or previous.matrix is None):
        needs = None
    elif previous is None:
        needs = ()
    else:
        needs = tuple(kwargs["name"] for kwargs in previous.expanded)
    for kwargs in spec.expanded:
        kwargs["needs"] = needs


def _explicit_needs(
    chk: Checker,
    spec: StepSpec,
    targets: dict[str, list[str]],
    edges: dict[tuple[str, str], Node],
) -> None:
    assert spec.needs is not None
    wanted: list[tuple[str, Node]] = []
    written: set[str] = set()
    for text, node in spec.needs:
        if text in written:
            chk.add(node, f"{spec.label} lists {text!r} twice in 'needs'")
            continue
        written.add(text)
        if text not in targets:
            chk.add(
                node,
                f"{spec.label} needs unknown step {text!r}" + did_you_mean(text, list(targets)),
            )
            continue
        if spec.matrix is not None and text == spec.base:
            chk.add(node, f"{spec.label} needs itself")
            continue
        wanted.extend((target, node) for target in targets[text])
    for kwargs in spec.expanded:
        name = kwargs["name"]
        needs: list[str] = []
        for target, node in wanted:
            if target == name:
                chk.add(node, f"step {name!r} needs itself")
            elif target not in needs:
                needs.append(target)
                edges.setdefault((name, target), node)
        kwargs["needs"] = tuple(needs)


def _report_cycles(chk: Checker, specs: list[StepSpec], edges: dict[tuple[str, str], Node]) -> None:
    deps: dict[str, list[str]] = {}
    previous: str | None = None
    for spec in specs:
        for kwargs in spec.expanded:
            needs = kwargs.get("needs")
            if needs is None:
                needs = (previous,) if previous is not None else ()
            deps[kwargs["name"]] = [n for n in needs if n != kwargs["name"]]
            previous = kwargs["name"]
    for _ in range(_MAX_CYCLES_REPORTED):
        cycle = find_cycle(deps)
        if cycle is None:
            return
        # Start the message at an edge someone wrote, and point at that entry.
        start = 0
        for i in range(len(cycle)):
            if (cycle[i], cycle[(i + 1) % len(cycle)]) in edges:
                start = i
                break
        ordered = cycle[start:] + cycle[:start]
        edge = (ordered[0], ordered[1 % len(ordered)])
        node = edges.get(edge)
        chk.add(
            node if node is not None else (0, 0),
            "needs form a cycle: " + " -> ".join([*ordered, ordered[0]]),
        )
        deps[edge[0]] = [n for n in deps[edge[0]] if n != edge[1]]


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """Names on one cycle (each needs the next, the last needs the first), or None.

    Iterative, unlike ``dag.find_cycle``, so that a long chain of steps
    cannot exhaust the recursion limit.
    """
    grey, black = 1, 2
    colour: dict[str, int] = {}
    for root in deps:
        if root in colour:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                state = colour.get(dep)
                if dep not in deps or state == black:
                    continue
                if state == grey:
                    return path[path.index(dep) :]
                colour[dep] = grey
                path.append(dep)
                stack.append(iter(deps[dep]))
                break
            else:
                stack.pop()
                colour[path.pop()] = black
    return None


def _check_cache_matrix(chk: Checker, spec: StepSpec, variables: list[str]) -> bool:
    """Each ``${{ matrix.NAME }}`` of the cache key names a matrix variable."""
    assert spec.cache_key is not None
    text, node = spec.cache_key
    ok = True
    for found in expressions_of(text):
        if found.context == "matrix" and found.name not in variables:
            ok = False
            chk.add(
                locate(chk, node, text, found.start),
                f"'cache.key' in {spec.label} uses ${{{{ matrix.{found.name} }}}}, but "
                + (
                    f"the matrix has no variable {found.name!r}{did_you_mean(found.name or '', variables)}"
                    if variables
                    else "the step has no matrix"
                ),
            )
    return ok
