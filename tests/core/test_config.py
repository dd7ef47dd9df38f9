"""Settings precedence: defaults < sauci.toml < SAUCI_* < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.core.config import Settings, default_data_dir, load_settings
from sauci.exceptions import ConfigError


def test_defaults(tmp_path):
    s = load_settings(cwd=tmp_path, environ={})
    assert (s.jobs, s.fail_fast, s.log_limit, s.grace) == (4, False, 100 * 1024 * 1024, 5.0)


def test_precedence_toml_then_env_then_flags(tmp_path):
    (tmp_path / "sauci.toml").write_text('[sauci]\njobs = 2\ngrace = "10s"\nlog_limit = "1MiB"\n')
    s = load_settings(cwd=tmp_path, environ={})
    assert (s.jobs, s.grace, s.log_limit) == (2, 10.0, 1024 * 1024)
    s = load_settings(cwd=tmp_path, environ={"SAUCI_JOBS": "3"})
    assert (s.jobs, s.grace) == (3, 10.0)
    s = load_settings({"jobs": 5}, cwd=tmp_path, environ={"SAUCI_JOBS": "3"})
    assert s.jobs == 5


def test_unknown_setting_suggests_the_right_one(tmp_path):
    (tmp_path / "sauci.toml").write_text("[sauci]\njbos = 2\n")
    with pytest.raises(ConfigError, match="did you mean 'jobs'"):
        load_settings(cwd=tmp_path, environ={})


def test_bad_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="SAUCI_JOBS"):
        load_settings(cwd=tmp_path, environ={"SAUCI_JOBS": "many"})
    with pytest.raises(ConfigError):
        load_settings({"jobs": 0}, cwd=tmp_path, environ={})
    (tmp_path / "sauci.toml").write_text("[sauci\n")
    with pytest.raises(ConfigError, match=r"sauci\.toml"):
        load_settings(cwd=tmp_path, environ={})


def test_data_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SAUCI_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "sauci"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "explicit"))
    assert default_data_dir() == tmp_path / "explicit"
    assert Settings().store_url == f"sqlite:///{Path(tmp_path / 'explicit' / 'sauci.db')}"


def test_drain_wait_is_a_setting(tmp_path):
    assert 1.0 == load_settings(cwd=tmp_path, environ={}).drain_wait
    assert 1.45 == load_settings(cwd=tmp_path, environ={"SAUCI_DRAIN_WAIT": "1.45"}).drain_wait


def test_place_defer_is_a_setting(tmp_path):
    assert 0.1 == load_settings(cwd=tmp_path, environ={}).place_defer
    assert 0.0 == load_settings(cwd=tmp_path, environ={"SAUCI_PLACE_DEFER": "0"}).place_defer


def test_artifact_limit_is_a_size_setting(tmp_path):
    from sauci.core.artifacts import DEFAULT_ARTIFACT_LIMIT

    assert DEFAULT_ARTIFACT_LIMIT == load_settings(cwd=tmp_path, environ={}).artifact_limit
    env = {"SAUCI_ARTIFACT_LIMIT": "500MiB"}
    assert 500 * 1024**2 == load_settings(cwd=tmp_path, environ=env).artifact_limit
