"""The shared ``__repr__`` of the value objects writes what attrs would."""

from __future__ import annotations

import attrs
import pytest

from sauci._repr import value_repr
from sauci.core import models, records
from sauci.git import Commit


@attrs.frozen(kw_only=True)
class ByAttrs:
    a: int
    b: str = "x'y"
    c: tuple[str, ...] = ()
    d: float | None = None
    hidden: str = attrs.field(default="secret", repr=False)


@attrs.frozen(kw_only=True, repr=False)
class Shared:
    __repr__ = value_repr

    a: int
    b: str = "x'y"
    c: tuple[str, ...] = ()
    d: float | None = None
    hidden: str = attrs.field(default="secret", repr=False)


@pytest.mark.parametrize(
    "values",
    [{"a": 1}, {"a": -2, "b": "", "c": ("p", "q"), "d": 1.5}, {"a": 0, "b": "ü\n\x00"}],
)
def test_it_matches_the_repr_attrs_generates(values):
    assert repr(ByAttrs(**values)).replace("ByAttrs", "Shared") == repr(Shared(**values))


def test_the_value_objects_use_it_and_nest():
    step = models.Step(name="t", run="true", limits=models.Limits(memory=1024))
    text = repr(step)
    assert text.startswith("Step(name='t', run=('true',),")
    assert "limits=Limits(memory=1024, processes=None, cpu=None)" in text
    assert "Worker(name='w'," in repr(records.Worker(name="w"))
    assert "Commit(sha='a', ref='', author='x', message='m')" == repr(
        Commit(sha="a", ref="", author="x", message="m")
    )
