"""The limit on local action uses counts per job entry, and each action file is
read once per workflow (review of session 17: a 210-entry matrix whose one
step uses ``./setup`` was refused, the 200 uses counted over every entry)."""

from __future__ import annotations

from pathlib import Path

import sauci.workflows.github._composite as composite
from sauci.workflows.github import Settings, plan_github


def test_a_matrix_of_210_entries_using_one_local_action_each_is_planned(
    tmp_path: Path, monkeypatch
) -> None:
    action = tmp_path / "setup"
    action.mkdir()
    (action / "action.yml").write_text(
        "runs:\n  using: composite\n  steps:\n    - run: echo hi\n      shell: bash\n"
    )
    reads = []
    real = composite._action_file
    monkeypatch.setattr(composite, "_action_file", lambda *a: reads.append(a) or real(*a))
    versions = ", ".join(str(n) for n in range(210))
    workflow = (
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n"
        f"    strategy:\n      matrix:\n        n: [{versions}]\n"
        "    steps:\n      - uses: ./setup\n"
    )
    plan_github(workflow, Settings(file="ci.yml", workspace=tmp_path))
    assert len(reads) == 1  # its bytes counted once, not 210 times
