"""Which launcher starts latent workers is the operator's setting: sauci.toml,
SAUCI_* variables and ``sauci serve --launcher``, checked when read."""

from __future__ import annotations

import pytest

from sauci.core.config import load_settings
from sauci.exceptions import ConfigError


def test_the_default_launcher_is_a_local_process(tmp_path):
    s = load_settings({"data_dir": str(tmp_path)}, cwd=tmp_path, environ={})
    assert ("process", "", "host", ()) == (
        s.launcher,
        s.launch_image,
        s.launch_network,
        s.launch_volumes,
    )


def test_launcher_from_toml_env_and_the_serve_flag(tmp_path):
    from sauci.cli import build_parser

    (tmp_path / "sauci.toml").write_text(
        '[sauci]\nlauncher = "docker"\nlaunch_image = "sauci:1"\n'
        'launch_volumes = ["/srv/a:/srv/a:ro", "/srv/b:/srv/b"]\n'
    )
    s = load_settings({}, cwd=tmp_path, environ={})
    assert ("docker", "sauci:1") == (s.launcher, s.launch_image)
    assert ("/srv/a:/srv/a:ro", "/srv/b:/srv/b") == s.launch_volumes
    env = {"SAUCI_LAUNCH_IMAGE": "sauci:2", "SAUCI_LAUNCH_VOLUMES": "/x:/x, /y:/y:ro"}
    s = load_settings({}, cwd=tmp_path, environ=env)
    assert ("sauci:2", ("/x:/x", "/y:/y:ro")) == (s.launch_image, s.launch_volumes)
    args = build_parser().parse_args(["serve", "--launch-workers", "2", "--launcher", "process"])
    s = load_settings({"launcher": args.launcher}, cwd=tmp_path, environ=env)
    assert "process" == s.launcher


def test_an_unknown_launcher_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="launcher"):
        load_settings({"launcher": "lambda"}, cwd=tmp_path, environ={})
    with pytest.raises(SystemExit):
        from sauci.cli import build_parser

        build_parser().parse_args(["serve", "--launcher", "lambda"])


def test_docker_without_an_image_is_a_config_error(tmp_path):
    pytest.importorskip("docker")
    from sauci.core.config import Settings
    from sauci.distributed._docker_launcher import DockerLauncher

    with pytest.raises(ConfigError, match="needs launch_image"):
        DockerLauncher.from_settings(Settings(data_dir=tmp_path, launcher="docker"))
