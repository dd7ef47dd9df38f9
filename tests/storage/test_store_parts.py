"""The Store protocol is the combination of small per-entity parts, each with
its own conformance suite in sauci.testing."""

from __future__ import annotations

import inspect

import sauci.testing
from sauci.typing import STORE_PARTS, Store


def _methods(protocol: type) -> set[str]:
    own = {name for name, value in vars(protocol).items() if inspect.isfunction(value)}
    return {name for name in own if not name.startswith("_")}


def test_no_store_part_has_more_than_six_methods() -> None:
    sizes = {part.__name__: len(_methods(part)) for part in STORE_PARTS}
    assert {} == {name: n for name, n in sizes.items() if n > 6}
    assert all(n > 0 for n in sizes.values())


def test_store_is_every_part_plus_close_and_nothing_else() -> None:
    every = set().union(*(_methods(part) for part in STORE_PARTS))
    assert sum(len(_methods(part)) for part in STORE_PARTS) == len(every)  # no overlap
    assert {"close"} == _methods(Store)
    assert all(issubclass(Store, part) for part in STORE_PARTS)


def test_every_part_has_its_conformance_suite_and_store_conformance_has_them_all() -> None:
    suites = [getattr(sauci.testing, f"{part.__name__}Conformance") for part in STORE_PARTS]
    assert all(issubclass(sauci.testing.StoreConformance, suite) for suite in suites)
    assert all(any(n.startswith("test_") for n in vars(suite)) for suite in suites)
