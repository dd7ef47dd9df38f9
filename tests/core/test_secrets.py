"""A server's secrets: only its secrets file and SAUCI_SECRET_* variables, for the
repositories they are meant for; nothing else of the server's environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Build, Pipeline, Step
from sauci.core.secrets import Secrets, load_secrets
from sauci.exceptions import ConfigError
from sauci.storage.memory import MemoryStore

SERVER_ENV = {
    "SAUCI_ADMIN_PASSWORD": "admin-pw",
    "SAUCI_WEBHOOK_SECRET": "hook-secret",
    "DATABASE_URL": "postgresql://ci:pw@db/ci",
    "SAUCI_SECRET_CODECOV_TOKEN": "codecov-123",
    "SAUCI_SECRET_bad-name": "ignored",
}


def test_only_sauci_secret_variables_become_secrets():
    secrets = load_secrets(None, SERVER_ENV)
    assert {"CODECOV_TOKEN": "codecov-123"} == secrets.for_repo("/srv/git/app.git")


def test_the_file_has_shared_and_per_repository_values(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text(
        'NPM_TOKEN = "npm"\n\n["/srv/git/app.git"]\nDEPLOY_KEY = "deploy"\nNPM_TOKEN = "app-npm"\n'
    )
    secrets = load_secrets(path, {})
    assert {"NPM_TOKEN": "app-npm", "DEPLOY_KEY": "deploy"} == secrets.for_repo("/srv/git/app.git/")
    assert {"NPM_TOKEN": "npm"} == secrets.for_repo("/srv/git/other.git")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("X = 1\n", "X must be a string"),
        ('"bad name" = "v"\n', "'bad name' is not a variable name"),
        ("X = \n", "not a valid TOML file"),
    ],
)
def test_a_bad_secrets_file_says_what_and_where(tmp_path, text, message):
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_secrets(path, {})
    assert str(path) in str(caught.value)


def test_a_missing_secrets_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="the secrets file does not exist"):
        load_secrets(tmp_path / "nope.toml", {})


def test_the_repr_shows_names_never_values():
    assert "Secrets(names=['A'])" == repr(Secrets(shared={"A": "hunter2"}))


def test_a_served_step_that_names_server_variables_receives_none_of_them(tmp_path, monkeypatch):
    """`secrets: [SAUCI_ADMIN_PASSWORD, ...]` in a pushed pipeline gets nothing:
    the server hands its steps only what its secrets sources hold."""
    for key, value in SERVER_ENV.items():
        monkeypatch.setenv(key, value)
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    server = build_server(store=MemoryStore(), settings=settings)
    step = Step(
        name="steal",
        run="env",
        secrets=["SAUCI_ADMIN_PASSWORD", "SAUCI_WEBHOOK_SECRET", "DATABASE_URL", "CODECOV_TOKEN"],
    )
    build = Build(id=1, repo="/r", ref="refs/heads/main", sha="a" * 40, event="push")
    from sauci.core._step_executor import step_env

    executor = server.runner.local.executor
    env = step_env(
        build, Pipeline(steps=[step]), step, tmp_path, secrets=executor.secrets.for_repo("/r")
    )
    assert "codecov-123" == env["CODECOV_TOKEN"]
    assert not {"SAUCI_ADMIN_PASSWORD", "SAUCI_WEBHOOK_SECRET", "DATABASE_URL"} & set(env)
    assert not any("admin-pw" in v or "hook-secret" in v for v in env.values())


def test_sauci_serve_refuses_to_start_on_a_bad_secrets_file(tmp_path):
    bad = tmp_path / "secrets.toml"
    bad.write_text("X = 1\n")
    result = subprocess.run(
        [
            "sauci",
            "serve",
            "--no-ui",
            "--sandbox",
            "local",
            "--data-dir",
            str(tmp_path / "data"),
            "--secrets-file",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 2 == result.returncode, result.stderr
    assert f"{bad}: the top level: X must be a string" in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path(tmp_path / "data" / "server.json").exists()
