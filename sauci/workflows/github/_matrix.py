"""A job's ``strategy.matrix`` expanded by GitHub's documented rules.

The axes' cartesian product (in the order the axes are written), minus the
``exclude`` entries (an entry removes every combination that has all of its
values), then each ``include`` entry merged in: added to every combination
whose original axes it does not contradict (values it adds itself may be
overwritten by a later entry), or appended as a combination of its own when
it fits none. Combinations appended by ``include`` are not merged into
again. A matrix of only ``include`` entries is that list.
https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_ENTRIES", "MatrixError", "expand_matrix", "matrix_text"]

MAX_ENTRIES = 256  # GitHub's limit per workflow run
# Bounds on the work of expanding a matrix a pushed file or a job's output
# wrote: the axes' product before exclude, and the include/exclude lists.
MAX_PRODUCT = 4096
MAX_LIST = 512


class MatrixError(ValueError):
    """The matrix cannot be expanded (a message for the user)."""


def expand_matrix(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of ``matrix`` (a mapping of axes, ``include``, ``exclude``)."""
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    include = _entries(matrix.get("include"), "include")
    exclude = _entries(matrix.get("exclude"), "exclude")
    for name, values in axes.items():
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise MatrixError(f"the matrix axis {name!r} must be a list of values")
        if not values:
            raise MatrixError(f"the matrix axis {name!r} is an empty list")
    product = math.prod(len(values) for values in axes.values())
    if product > MAX_PRODUCT:
        raise MatrixError(
            f"the matrix's axes make {product} combinations, more than {MAX_PRODUCT}"
            f" (a matrix runs at most {MAX_ENTRIES})"
        )
    if not axes:
        combos = [dict(entry) for entry in include]
    else:
        names = list(axes)
        combos = [
            dict(zip(names, values, strict=False)) for values in itertools.product(*axes.values())
        ]
        combos = [c for c in combos if not any(_has_all(c, e) for e in exclude)]
        original = set(names)
        count = len(combos)
        for entry in include:
            merged = False
            for combo in combos[:count]:
                if all(combo.get(k) == v for k, v in entry.items() if k in original):
                    combo.update(entry)
                    merged = True
            if not merged:
                combos.append(dict(entry))
    if len(combos) > MAX_ENTRIES:
        raise MatrixError(f"the matrix has {len(combos)} combinations, more than {MAX_ENTRIES}")
    return combos


def matrix_text(value: Any) -> str:
    """A matrix value as text: strings as they are, numbers as GitHub prints them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _has_all(combo: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(k in combo and _matches(combo[k], v) for k, v in entry.items())


def _matches(value: Any, wanted: Any) -> bool:
    """An exclude's dict value matches a combination's dict value on the keys it gives."""
    if isinstance(value, Mapping) and isinstance(wanted, Mapping):
        return all(k in value and _matches(value[k], v) for k, v in wanted.items())
    return bool(value == wanted)


def _entries(value: Any, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise MatrixError(f"the matrix's {what!r} must be a list of mappings")
    if len(value) > MAX_LIST:
        raise MatrixError(f"the matrix's {what!r} has {len(value)} entries, more than {MAX_LIST}")
    entries = []
    for item in value:
        if not isinstance(item, Mapping):
            raise MatrixError(f"each entry of the matrix's {what!r} must be a mapping")
        entries.append(item)
    return entries
