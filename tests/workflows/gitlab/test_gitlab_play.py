"""GitLab's ``when: manual`` under a server: the job waits for a person (its
step is skipped with the reason "manual" in a push's build) and a build a
person starts with the parameter ``SAUCI_PLAY=<job>`` (``sauci trigger
--param``, the page's Trigger form) runs it with the jobs it needs, as
GitLab's play button does; a push cannot play one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.core.models import Build
from sauci.exceptions import ConfigError
from sauci.workflows import load_for_build

PIPELINE = """\
stages: [test, deploy]
test:
  stage: test
  script: [echo testing]
deploy:
  stage: deploy
  script: [echo deploying]
  when: manual
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".gitlab-ci.yml").write_text(PIPELINE)
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@x", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "m"], check=True)
    return tmp_path


def build(repo: Path, event: str, **params: str) -> Build:
    return Build(id=3, repo=str(repo), ref="refs/heads/main", event=event, params=params)


def test_a_pushs_manual_job_waits_for_a_person(repo: Path) -> None:
    steps = {s.name: s for s in load_for_build(repo, build(repo, "push")).steps}
    assert "manual" == steps["deploy"].condition.reason
    assert steps["test"].condition is None


@pytest.mark.parametrize("event", ["manual", "rerun"])
def test_a_person_plays_it_with_the_jobs_it_needs(repo: Path, event: str) -> None:
    steps = load_for_build(repo, build(repo, event, SAUCI_PLAY="deploy")).steps
    assert ["test", "deploy"] == [s.name for s in steps]
    assert [None, None] == [s.condition for s in steps]


def test_a_push_cannot_play_a_manual_job(repo: Path) -> None:
    steps = {
        s.name: s for s in load_for_build(repo, build(repo, "push", SAUCI_PLAY="deploy")).steps
    }
    assert "manual" == steps["deploy"].condition.reason


def test_playing_a_job_that_is_not_there_says_so(repo: Path) -> None:
    with pytest.raises(ConfigError, match="has no job 'nope'"):
        load_for_build(repo, build(repo, "manual", SAUCI_PLAY="nope"))
