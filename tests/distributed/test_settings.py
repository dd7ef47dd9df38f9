"""The distributed settings: defaults, sources, and errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.core.config import load_settings
from sauci.exceptions import ConfigError


def test_defaults_run_everything_in_process(tmp_path):
    s = load_settings({"data_dir": str(tmp_path)}, cwd=tmp_path, environ={})
    assert ("", (), 2, 5.0, 30.0, 3) == (
        s.broker,
        s.labels,
        s.slots,
        s.heartbeat_interval,
        s.lost_timeout,
        s.attempts,
    )
    assert tmp_path / "artifacts" == s.artifacts_dir


def test_sources_toml_env_and_flags(tmp_path):
    (tmp_path / "sauci.toml").write_text(
        '[sauci]\nbroker = "redis://b/0"\nlabels = ["linux", "gpu"]\nlost_timeout = "1m"\n'
        'artifacts_dir = "/shared/artifacts"\n'
    )
    s = load_settings(cwd=tmp_path, environ={"SAUCI_SLOTS": "4", "SAUCI_ATTEMPTS": "3"})
    assert ("redis://b/0", ("gpu", "linux"), 60.0, 4, 3) == (
        s.broker,
        s.labels,
        s.lost_timeout,
        s.slots,
        s.attempts,
    )
    assert Path("/shared/artifacts") == s.artifacts_dir
    s = load_settings({"labels": "docker, linux,docker"}, cwd=tmp_path, environ={})
    assert ("docker", "linux") == s.labels


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": "a b"}, "the label 'a b' is not"),
        ({"labels": ",".join(f"l{i}" for i in range(9))}, "at most 8"),
        ({"slots": 0}, "slots"),
        ({"lost_timeout": 0}, "lost_timeout"),
    ],
)
def test_bad_values_say_which_setting(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides, cwd=tmp_path, environ={})
