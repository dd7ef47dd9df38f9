"""Each .gitlab-ci.yml of the corpus planned for a few builds, compared with
its golden plan (jobs, order, matrix entries, what is left out and why).

Regenerate the golden files after a deliberate change with
SAUCI_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gitlab_plan import plan_dict

from sauci.exceptions import PipelineError
from sauci.workflows.gitlab import GitLabContext, plan_gitlab

CORPUS = Path(__file__).parent / "corpus"

PUSH_MAIN = GitLabContext(branch="main", sha="0123456789abcdef")
CONTEXTS = {
    "main": PUSH_MAIN,
    "feature": GitLabContext(branch="feature/x", changed=("README.md",)),
    "tag": GitLabContext(branch=None, tag="v1.2.0"),
    "schedule": GitLabContext(branch="main", source="schedule"),
}
CASES = {
    "pytest-basic": ["main"],
    "tox-matrix": ["main"],
    "templates": ["main"],
    "rules-workflow": ["main", "feature", "tag", "schedule"],
    "include-local": ["main"],
    "only-except": ["main", "feature", "tag", "schedule"],
    "parallel-split": ["main"],
}


@pytest.mark.parametrize(
    ("case", "context"), [(case, ctx) for case, ctxs in CASES.items() for ctx in ctxs]
)
def test_the_plan_is_the_golden_one(case: str, context: str) -> None:
    plan = plan_gitlab(CORPUS / case, context=CONTEXTS[context])
    got = plan_dict(plan)
    golden = CORPUS / case / f"plan.{context}.json"
    if os.environ.get("SAUCI_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=2) + "\n", encoding="utf-8")
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_what_is_not_supported_is_named_by_validation() -> None:
    """The "unsupported" case: each feature SauCI does not run is a problem at
    its file:line:col that names it (golden file problems.txt)."""
    with pytest.raises(PipelineError) as info:
        plan_gitlab(CORPUS / "unsupported", context=PUSH_MAIN)
    got = "".join(f"{problem}\n" for problem in info.value.problems)
    golden = CORPUS / "unsupported" / "problems.txt"
    if os.environ.get("SAUCI_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def test_every_case_of_the_corpus_is_planned() -> None:
    cases = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert cases == sorted([*CASES, "unsupported"])
