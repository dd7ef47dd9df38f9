"""``${{ matrix.* }}`` and ``${{ env.* }}`` in every text field of a step, and their problems
at file:line:column."""

from __future__ import annotations

import textwrap

import pytest

from sauci.core.pipeline import parse_pipeline, validate_pipeline


def parse(text: str):
    return parse_pipeline(textwrap.dedent(text))


def problems(text: str) -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.message) for p in validate_pipeline(textwrap.dedent(text))]


def test_matrix_and_env_expand_in_every_field():
    pipeline = parse(
        """\
        env:
          TOOL: pytest
        steps:
          test:
            name: test ${{ matrix.py }} with ${{ env.TOOL }}
            matrix:
              py: ['3.11', '3.12']
            env:
              PYV: py${{ matrix.py }}
              RUNNER: ${{ env.TOOL }}-x
            image: python:${{ matrix.py }}
            workdir: src/${{ env.PYV }}
            run: ${{ env.RUNNER }} --junitxml=reports/${{ matrix.py }}.xml
            junit: reports/${{ matrix.py }}.xml
            artifacts: ['dist/${{ env.PYV }}/*.whl']
        """
    )
    first, second = pipeline.steps
    assert "test 3.11 with pytest" == first.name
    assert {"PYV": "py3.11", "RUNNER": "pytest-x", "py": "3.11"} == dict(first.env)
    assert "python:3.11" == first.image
    assert "src/py3.11" == first.workdir
    assert ("pytest-x --junitxml=reports/3.11.xml",) == first.run
    assert ("reports/3.11.xml",) == first.junit
    assert ("dist/py3.11/*.whl",) == first.artifacts
    assert ("reports/3.12.xml",) == second.junit
    assert {"PYV": "py3.12", "RUNNER": "pytest-x", "py": "3.12"} == dict(second.env)


def test_a_plain_step_expands_env_too():
    pipeline = parse(
        """\
        env: {OUT: build}
        steps:
          - name: make ${{ env.OUT }}
            run: make -C ${{ env.OUT }}
            artifacts: ${{ env.OUT }}/*.tar
          - name: after
            needs: [make build]
            run: 'true'
        """
    )
    assert ("make build", "after") == tuple(s.name for s in pipeline.steps)
    assert ("make -C build",) == pipeline.steps[0].run
    assert ("build/*.tar",) == pipeline.steps[0].artifacts


@pytest.mark.parametrize(
    ("field", "line", "column", "message"),
    [
        (
            "junit: reports/${{ matrix.pyhton }}.xml",
            4,
            20,
            "'junit' in step 't' uses ${{ matrix.pyhton }}, but the matrix has no variable "
            "'pyhton'; did you mean 'python'?",
        ),
        (
            "artifacts: ['ok', 'dist/${{ matrx.python }}']",
            4,
            29,
            "'artifacts' in step 't' uses ${{ matrx.python }}, but there is no context "
            "'matrx'; did you mean 'matrix'? (contexts here: env, matrix)",
        ),
        (
            "env: {V: '${{ env.V2 }}'}",
            4,
            15,
            "'env' V in step 't' uses ${{ env.V2 }}, but 'V2' is not set in the pipeline's env",
        ),
        (
            "image: 'python:${{ secrets.TOKEN }}'",
            4,
            20,
            "'image' in step 't' uses ${{ secrets.TOKEN }}, but there is no context 'secrets'",
        ),
        (
            "workdir: ${{ env.HOME }}",
            4,
            14,
            "'workdir' in step 't' uses ${{ env.HOME }}, but 'HOME' is not set in the "
            "pipeline's env",
        ),
        (
            "name: t ${{ matrix.python }} ${{ 1 + 1 }}",
            4,
            34,
            "'name' in step 't' uses ${{ 1 + 1 }}, which is not an expression SauCI reads",
        ),
    ],
)
def test_unknown_or_misspelt_expressions_are_located(field, line, column, message):
    text = f"steps:\n  t:\n    matrix: {{python: ['3.12']}}\n    {field}\n    run: 'true'\n"
    found = [(p.line, p.column, p.message) for p in validate_pipeline(text)]
    assert len(found) == 1, found
    assert (line, column) == found[0][:2]
    assert found[0][2].startswith(message), found[0][2]


def test_an_expression_in_a_block_scalar_is_located_on_its_own_line():
    found = problems(
        """\
        steps:
          t:
            matrix: {python: ['3.12']}
            run: |
              echo start
              echo ${{ matrix.pyton }}
        """
    )
    assert [(6, 12)] == [(line, column) for line, column, _ in found]


def test_the_top_level_env_cannot_use_expressions():
    found = problems("env:\n  A: ${{ matrix.x }}\nsteps:\n  t: {run: 'true'}\n")
    assert [
        (2, 6, "the top-level 'env' A uses ${{ matrix.x }}, but no expression can be used here")
    ] == found


def test_a_step_s_env_sees_the_top_level_env_not_its_own():
    found = problems("steps:\n  t:\n    env: {A: x, B: '${{ env.A }}'}\n    run: 'true'\n")
    assert [(3, 21)] == [(line, column) for line, column, _ in found]


def test_a_matrix_value_is_not_expanded_again():
    step = parse(
        """\
        env: {SECRET_NAME: nothing}
        steps:
          t:
            matrix: {v: ['${{ env.SECRET_NAME }}', '$(id); `id`']}
            run: echo ${{ matrix.v }}
            name: t-${{ matrix.v }}
        """
    ).steps
    assert ("echo ${{ env.SECRET_NAME }}",) == step[0].run
    assert ("echo $(id); `id`",) == step[1].run


@pytest.mark.parametrize("value", ["/etc", "..", "../.."])
def test_a_glob_or_workdir_that_leaves_the_workspace_after_expansion_is_refused(value):
    found = problems(
        f"""\
        steps:
          t:
            matrix: {{d: ['{value}']}}
            run: 'true'
            junit: ${{{{ matrix.d }}}}/r.xml
            workdir: ${{{{ matrix.d }}}}
        """
    )
    messages = [m for _, _, m in found]
    assert len(messages) == 2, found
    assert messages[0].startswith("'junit' in step 't': the pattern")
    assert messages[1].startswith("'workdir' in step 't'")


def test_the_server_s_environment_and_secrets_are_not_the_env_context(monkeypatch):
    monkeypatch.setenv("SAUCI_SECRET_TOKEN", "s3cr3t")
    found = problems(
        "steps:\n  t:\n    secrets: [SAUCI_SECRET_TOKEN]\n    run: echo ${{ env.SAUCI_SECRET_TOKEN }}\n"
    )
    assert len(found) == 1 and "not set in the pipeline's env" in found[0][2]


def test_a_hand_written_matrix_values_step_is_still_checked():
    """``matrix_values`` (what dump_pipeline writes) keeps its text as is, but
    a workdir outside the workspace is refused there too."""
    found = problems(
        "steps:\n  - name: t (a)\n    matrix_values: {v: a}\n    run: 'true'\n    workdir: /etc\n"
    )
    assert [(5, 14)] == [(line, column) for line, column, _ in found]
    step = parse(
        "steps:\n  - name: t (a)\n    matrix_values: {v: a}\n    run: echo ${{ matrix.v }}\n"
    ).steps[0]
    assert ("echo ${{ matrix.v }}",) == step.run
    assert {"v": "a"} == dict(step.matrix)


def test_a_matrix_name_without_matrix_references_gets_the_values_appended():
    pipeline = parse(
        """\
        env: {TOOL: tox}
        steps:
          - name: test with ${{ env.TOOL }}
            matrix: {py: ['3.11', '3.12']}
            run: 'true'
        """
    )
    assert ["test with tox (3.11)", "test with tox (3.12)"] == [s.name for s in pipeline.steps]
