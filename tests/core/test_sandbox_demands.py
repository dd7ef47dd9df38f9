"""A step's demands on its sandbox are validation problems at the key that asks,
when the sandbox that will run the step cannot honour them."""

from __future__ import annotations

import pytest

from sauci.core.demands import SandboxCapabilities
from sauci.core.pipeline import parse_pipeline, validate_pipeline
from sauci.exceptions import PipelineError

ALL = frozenset(
    {"services", "image", "isolates_network", "limits.memory", "limits.processes", "limits.cpu"}
)
KNOWN = {
    "bare": frozenset(),
    "jail": frozenset({"isolates_network", "limits.memory", "limits.processes", "limits.cpu"}),
    "box": ALL,
}


def caps(default: str = "bare", **extra: frozenset[str] | None) -> SandboxCapabilities:
    known = {**KNOWN, **extra}
    return SandboxCapabilities(default=default, lookup=known.get, names=("bare", "jail", "box"))


def problems(text: str, sandboxes: SandboxCapabilities | None = None) -> list[str]:
    return [
        f"{p.line}:{p.column}: {p.message}"
        for p in validate_pipeline(text, "p.yml", capabilities=sandboxes or caps())
    ]


@pytest.mark.parametrize(
    ("lines", "where", "cannot", "able"),
    [
        ("    services: [redis]\n", "3:5", "run services", "box"),
        ("    image: python:3.12\n", "3:5", "run images", "box"),
        ("    network: false\n", "3:5", "turn the network off", "jail"),
        ("    limits:\n      memory: 256MiB\n", "4:7", "enforce a memory limit", "jail"),
        ("    limits:\n      processes: 50\n", "4:7", "enforce a process limit", "jail"),
        ("    limits: {cpu: 1.5}\n", "3:14", "enforce a cpu limit", "jail"),
    ],
)
def test_each_demand_is_a_problem_at_its_key(lines, where, cannot, able):
    text = "steps:\n  t:\n" + lines + "    run: echo\n"
    assert [
        f"{where}: sandbox 'bare' cannot {cannot} (step 't'): use --sandbox {able}, "
        f"or 'sandbox: {able}' in the step"
    ] == problems(text)
    assert [] == problems(text, caps(default="box"))  # a sandbox that can: no problem


def test_network_true_and_a_plain_step_demand_nothing():
    text = "steps:\n  t:\n    run: echo\n    network: true\n  u:\n    run: echo\n"
    assert [] == problems(text)


def test_no_capabilities_checks_nothing_as_before():
    text = "steps:\n  t:\n    run: echo\n    services: [redis]\n"
    assert [] == validate_pipeline(text, "p.yml")
    assert 1 == len(parse_pipeline(text, "p.yml").steps)


def test_a_step_naming_its_sandbox_is_checked_against_that_one():
    text = (
        "steps:\n  t:\n    run: echo\n    sandbox: jail\n    network: false\n"
        "    services: [redis]\n"
    )
    assert [
        "6:5: sandbox 'jail' cannot run services (step 't'): use 'sandbox: box' in the step"
    ] == problems(text)


def test_a_sandbox_whose_capabilities_are_unknown_is_left_to_the_executor():
    text = "steps:\n  t:\n    run: echo\n    sandbox: other\n    services: [redis]\n"
    assert [] == problems(text, caps(other=None))


def test_when_no_sandbox_can_the_message_says_so():
    text = "steps:\n  t:\n    run: echo\n    services: [redis]\n"
    only = SandboxCapabilities(default="bare", lookup=KNOWN.get, names=("bare", "jail"))
    assert [
        "4:5: sandbox 'bare' cannot run services (step 't'), and no sandbox known here can"
    ] == problems(text, only)


def test_a_matrix_entry_is_one_problem_not_one_per_expansion():
    text = (
        "steps:\n  - name: t-${{ matrix.py }}\n    matrix: {py: ['3.11', '3.12']}\n"
        "    run: echo\n    image: python:${{ matrix.py }}\n"
    )
    assert [
        "5:5: sandbox 'bare' cannot run images (step 't-${{ matrix.py }}'): "
        "use --sandbox box, or 'sandbox: box' in the step"
    ] == problems(text)


def test_parse_raises_the_same_problems_as_validate_gives():
    text = "steps:\n  t:\n    run: echo\n    services: [redis]\n    network: false\n"
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text, "p.yml", capabilities=caps())
    assert list(caught.value.problems) == validate_pipeline(text, "p.yml", capabilities=caps())
    assert 2 == len(caught.value.problems)


def test_hostile_layouts_are_located_without_a_crash():
    # the list form, an alias for limits, a merge key, a step name with quotes
    text = (
        "steps:\n"
        '  - name: "it\'s"\n    run: echo\n    limits: &l {memory: 1GiB}\n'
        "  - name: again\n    run: echo\n    limits: *l\n"
        "  - <<: {network: false}\n    name: merged\n    run: echo\n"
    )
    found = problems(text)
    assert 3 == len(found), found
    assert found[0].startswith("4:17: sandbox 'bare' cannot enforce a memory limit (step \"it's\")")
    assert found[1].startswith("4:17: sandbox 'bare' cannot enforce a memory limit (step 'again')")
    assert found[2].startswith("8:5: sandbox 'bare' cannot turn the network off (step 'merged')")
