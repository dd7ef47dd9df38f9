"""Matrix steps: reading ``matrix:`` and the combinations it makes.

``${{ matrix.VAR }}`` is filled in by :mod:`sauci.core.expressions`.
"""

from __future__ import annotations

import itertools
import math
import re

from yaml.nodes import MappingNode, Node

from sauci.core.pipeline._nodes import Checker, did_you_mean, is_identifier

__all__ = ["MAX_COMBINATIONS", "Matrix", "read_matrix"]

MAX_COMBINATIONS = 256  # GitHub Actions' limit too; more is a mistake or a denial of service

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Matrix:
    """The variables of one step's matrix and the combinations left after ``exclude``."""

    __slots__ = ("combinations", "node", "variables")

    def __init__(
        self, node: Node, variables: dict[str, list[str]], combinations: list[dict[str, str]]
    ) -> None:
        self.node = node
        self.variables = variables
        self.combinations = combinations


def read_matrix(chk: Checker, node: MappingNode, label: str) -> Matrix | None:
    """Check a ``matrix:`` mapping and expand it to its combinations, in key order."""
    where = f" in the matrix of {label}"
    variables: dict[str, list[str]] = {}
    exclude: tuple[Node, Node] | None = None
    ok = True
    for name, key, value in chk.items(node, where):
        if name == "exclude":
            exclude = (key, value)
            continue
        if name == "include":
            chk.add(key, f"'include'{where} is not supported; add the values to the lists")
            ok = False
            continue
        if not is_identifier(name):
            chk.add(
                key,
                f"matrix variable {name!r} of {label} is not a valid name: use letters, "
                "digits and _, not starting with a digit",
            )
            ok = False
            continue
        values = _read_values(chk, name, value, label)
        if values is None:
            ok = False
        else:
            variables[name] = values
    if not ok:
        return None
    if not variables:
        chk.add(node, f"the matrix of {label} has no variables")
        return None
    count = math.prod(len(v) for v in variables.values())
    if count > MAX_COMBINATIONS:
        chk.add(
            node,
            f"the matrix of {label} makes {count} combinations; the limit is {MAX_COMBINATIONS}",
        )
        return None
    rules = _read_exclude(chk, exclude, variables, label) if exclude else []
    if rules is None:
        return None
    names = list(variables)
    combinations = []
    for chosen in itertools.product(*variables.values()):
        combination = dict(zip(names, chosen, strict=True))
        if not any(all(combination[k] == v for k, v in rule.items()) for rule in rules):
            combinations.append(combination)
    if not combinations:
        chk.add(exclude[0] if exclude else node, f"'exclude' removes every combination of {label}")
        return None
    return Matrix(node, variables, combinations)


def _read_values(chk: Checker, name: str, node: Node, label: str) -> list[str] | None:
    what = f"matrix variable {name!r} of {label}"
    listed = chk.sequence(node, what, "a list of values")
    if listed is None:
        return None
    if not listed.value:
        chk.add(node, f"{what}: the list of values is empty")
        return None
    values: list[str] = []
    ok = True
    for item in listed.value:
        text = chk.text(item, what, "a value such as 3.12 or ubuntu")
        if text is None:
            ok = False
        elif _CONTROL.search(text):
            chk.add(item, f"{what}: values cannot hold control characters such as newlines")
            ok = False
        elif text in values:
            chk.add(item, f"{what}: the value {text!r} is listed twice")
            ok = False
        else:
            values.append(text)
    return values if ok else None


def _read_exclude(
    chk: Checker, exclude: tuple[Node, Node], variables: dict[str, list[str]], label: str
) -> list[dict[str, str]] | None:
    _, node = exclude
    what = f"'exclude' in the matrix of {label}"
    entries = chk.sequence(node, what, "a list of mappings such as {os: windows}")
    if entries is None:
        return None
    rules = []
    ok = True
    for item in entries.value:
        mapping = chk.mapping(item, what, "a mapping of matrix variables to values")
        if mapping is None:
            ok = False
            continue
        rule: dict[str, str] = {}
        for name, name_node, value in chk.items(mapping, f" in {what}"):
            if name not in variables:
                chk.add(
                    name_node,
                    f"{what} names {name!r}, which is not a matrix variable"
                    + did_you_mean(name, list(variables)),
                )
                ok = False
                continue
            text = chk.text(value, what, "a value")
            if text is None:
                ok = False
            elif text not in variables[name]:
                listed = ", ".join(variables[name])
                chk.add(value, f"{what}: {text!r} is not one of the values of {name!r} ({listed})")
                ok = False
            else:
                rule[name] = text
        if not rule and ok:
            chk.add(item, f"{what}: an empty entry would remove every combination")
            ok = False
        rules.append(rule)
    return rules if ok else None
