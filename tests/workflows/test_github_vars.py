"""GitHub's ``vars`` context (configuration variables): GitHub keeps them in a
repository's settings, SauCI in the operator's ``[sauci.vars]`` of
``sauci.toml``, never in a file the repository pushes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sauci.core.models import Build
from sauci.exceptions import ConfigError
from sauci.workflows import load_for_build
from sauci.workflows._for_build import workflow_vars
from sauci.workflows.github import Settings, plan_github

WORKFLOW = """\
on: push
jobs:
  deploy:
    if: vars.DEPLOY_ENV == 'staging'
    runs-on: ubuntu-latest
    steps:
      - run: echo "to ${{ vars.DEPLOY_ENV }} as ${{ vars.missing }}."
"""


def test_vars_fill_text_and_decide_a_jobs_if() -> None:
    made = plan_github(WORKFLOW, Settings(file="ci.yml", vars={"DEPLOY_ENV": "staging"}))
    (step,) = made.pipeline.steps
    assert step.condition is None
    assert 'echo \\"to staging as .\\"' in json.dumps(json.loads(step.script())["steps"])
    (entry,) = plan_github(WORKFLOW, Settings(file="ci.yml")).entries
    assert "skipped: 'if: vars.DEPLOY_ENV == 'staging'' is false" == entry.skip


def test_a_server_reads_the_operators_table_never_the_repositorys(tmp_path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    (repo / "sauci.toml").write_text('[sauci.vars]\nDEPLOY_ENV = "staging"\n')  # pushed
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@x", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "m"], check=True)
    operator = tmp_path / "operator"
    operator.mkdir()
    monkeypatch.chdir(operator)
    monkeypatch.delenv("SAUCI_CONFIG", raising=False)
    build = Build(id=1, repo=str(repo), ref="refs/heads/main", event="push")
    (step,) = load_for_build(repo, build).steps
    assert "is false" in step.condition.reason  # the pushed sauci.toml is not read
    (operator / "sauci.toml").write_text('[sauci.vars]\nDEPLOY_ENV = "staging"\n')
    (step,) = load_for_build(repo, build).steps
    assert step.condition is None


def test_a_table_that_is_not_names_to_strings_is_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "sauci.toml"
    config.write_text("[sauci.vars]\nN = 1\n")
    with pytest.raises(ConfigError, match=r"\[sauci.vars\] maps names to strings"):
        workflow_vars({"SAUCI_CONFIG": str(config)})
