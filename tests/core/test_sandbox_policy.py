"""The server's sandbox policy: a pipeline can ask for less isolation than the
server's settings give, never for more, and can never name code to import."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sauci.app import LocalRunner
from sauci.core.config import Settings, load_settings
from sauci.core.models import BuildRequest, Pipeline, Status, Step
from sauci.core.pipeline import load_pipeline, validate_pipeline
from sauci.exceptions import ConfigError, SandboxError
from sauci.sandbox.local import LocalSandbox
from sauci.sandbox.policy import server_sandboxes
from sauci.storage.memory import MemoryStore
from sauci.testing.logs import capture_logs

ASKS_FOR_LOCAL = "steps:\n  build:\n    run: make\n  escape:\n    run: id\n    sandbox: local\n"


def test_a_sandbox_outside_the_allow_list_is_a_located_problem_naming_the_setting():
    problems = validate_pipeline(ASKS_FOR_LOCAL, sandboxes={"namespace"})
    assert [(p.line, p.column) for p in problems] == [(6, 14)]
    message = problems[0].message
    assert "the sandbox 'local' is not allowed by this server (allowed: namespace)" in message
    assert "allowed_sandboxes" in message and "--allow-sandbox" in message


def test_an_allowed_sandbox_is_accepted():
    assert [] == validate_pipeline(ASKS_FOR_LOCAL, sandboxes={"namespace", "local"})


@pytest.mark.parametrize(
    "name",
    ["evil.module:Sandbox", "evil:Sandbox", "os.path", "../x", "sauci.sandbox.local:LocalSandbox"],
)
def test_a_pipeline_can_never_name_code_to_import(name):
    text = f"steps:\n  a:\n    run: id\n    sandbox: '{name}'\n"
    for sandboxes in (None, {"namespace", name}):
        problems = validate_pipeline(text, sandboxes=sandboxes)
        assert [(4, 14)] == [(p.line, p.column) for p in problems]
        assert "never a module or path to import" in problems[0].message


def test_load_pipeline_holds_a_file_to_the_policy(tmp_path):
    (tmp_path / ".sauci.yml").write_text(ASKS_FOR_LOCAL)
    assert "local" == load_pipeline(tmp_path).steps[1].sandbox
    with pytest.raises(ConfigError, match="not allowed by this server"):
        load_pipeline(tmp_path, sandboxes={"namespace"})


def test_policy_settings_come_from_toml_env_and_flags(tmp_path):
    (tmp_path / "sauci.toml").write_text('[sauci]\nallowed_sandboxes = ["docker"]\n')
    settings = load_settings(cwd=tmp_path, environ={"SAUCI_SANDBOX": "namespace"})
    assert ("namespace", ("docker",)) == (settings.sandbox, settings.allowed_sandboxes)
    settings = load_settings({"allowed_sandboxes": "docker, local"}, cwd=tmp_path, environ={})
    assert ("", ("docker", "local")) == (settings.sandbox, settings.allowed_sandboxes)


def _no_bwrap(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(
        "sauci.sandbox.namespace.shutil.which",
        lambda name, *a, **k: None if name == "bwrap" else real(name, *a, **k),
    )


def test_a_server_without_its_isolating_sandbox_refuses_to_start(tmp_path, monkeypatch):
    _no_bwrap(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        server_sandboxes(Settings(data_dir=tmp_path / "data"), cgroup_prefix="sauci-t-")
    message = str(caught.value)
    assert "the 'namespace' sandbox cannot run here" in message
    assert "apt-get install bubblewrap" in message
    assert "sandbox = 'local'" in message


def test_local_runs_only_when_the_operator_chose_it_and_says_so(tmp_path, monkeypatch):
    _no_bwrap(monkeypatch)
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    with capture_logs() as logs:
        chosen = server_sandboxes(settings, cgroup_prefix="sauci-t-")
    assert ("local", frozenset({"local"})) == (chosen.name, chosen.allowed)
    assert type(chosen.default) is LocalSandbox
    assert "sandbox_local_chosen" in [e["event"] for e in logs]


def test_the_loader_refuses_what_the_policy_does_not_allow(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    chosen = server_sandboxes(settings, cgroup_prefix="sauci-t-")
    with pytest.raises(SandboxError, match="'docker' is not allowed by this server's policy"):
        chosen.load("docker")
    assert chosen.load("local") is chosen.default


def test_an_allowed_name_that_is_no_sandbox_stops_the_server_with_a_hint(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", sandbox="local", allowed_sandboxes=["dokcer"])
    with pytest.raises(ConfigError, match="unknown sandbox 'dokcer'; did you mean 'docker'"):
        server_sandboxes(settings, cgroup_prefix="sauci-t-")


def test_a_step_made_in_python_is_held_to_the_runner_s_policy_too(tmp_path):
    """The parser refuses a disallowed sandbox; the executor refuses it again at run
    time, for pipelines that reach a runner some other way."""
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    chosen = server_sandboxes(settings, cgroup_prefix="sauci-t-")
    store = MemoryStore()
    runner = LocalRunner(
        store=store,
        sandbox=chosen.default,
        load_sandbox=chosen.load,
        allowed_sandboxes=chosen.allowed,
        settings=settings,
        secrets={},
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    pipeline = Pipeline(steps=[Step(name="a", run="true", sandbox="docker")])
    outcome = runner.run_pipeline(pipeline, workspace, BuildRequest(repo="r", event="push"))
    (step,) = outcome.steps
    assert Status.ERRORED == step.status
    assert "not allowed by this server's policy" in (step.reason or "")


def test_settings_make_a_relative_data_dir_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"data_dir": "rel/data"}, cwd=tmp_path, environ={})
    assert Path(os.path.abspath("rel/data")) == settings.data_dir
    assert settings.data_dir.is_absolute() and Settings(data_dir="x").data_dir.is_absolute()
