"""A step made in Python may hold a literal `${{` (it is never expanded there);
dump_pipeline writes it so that parsing the text gives the same step back,
instead of a file whose `${{` the parser reads as an expression (found by
test_pipeline_props' round trip)."""

from __future__ import annotations

import pytest

from sauci import Pipeline, Step
from sauci.core.pipeline import dump_pipeline, parse_pipeline


@pytest.mark.parametrize(
    "step",
    [
        Step(name="0", run="${{"),
        Step(name="a ${{ x", run="echo"),
        Step(name="e", run="echo", env={"A": "${{ matrix.b }}"}),
        Step(name="j", run="echo", junit=["r/${{*.xml"], artifacts=["${{ env.X }}"]),
    ],
)
def test_literal_expression_marks_survive_dump_and_parse(step):
    pipeline = Pipeline(steps=[step])
    assert pipeline.steps == parse_pipeline(dump_pipeline(pipeline)).steps


def test_steps_without_marks_are_dumped_plainly():
    assert "matrix_values" not in dump_pipeline(Pipeline(steps=[Step(name="p", run="echo $HOME")]))
