"""`sauci run` twice on one repository: the second run restores the step's
cache, and `sauci show` says hit or miss and the size; `sauci validate`
names a bad cache key at file:line:col; --cache-limit and SAUCI_CACHE_LIMIT
set the limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sauci.app.flags import add_policy_options, policy_overrides
from sauci.cli import main
from sauci.core.config import load_settings

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

PIPELINE = """\
steps:
  build:
    run: |
      if [ -f out/marker ]; then echo found-marker; else mkdir -p out; echo made > out/marker; fi
    cache:
      paths: [out]
      key: "out-${{ hashFiles('.sauci.yml') }}"
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(d))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    monkeypatch.delenv("SAUCI_CACHE_LIMIT", raising=False)
    return d


def _repo(path: Path, pipeline: str) -> Path:
    path.mkdir(parents=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "first"], cwd=path, check=True)
    return path


def test_second_run_hits_and_show_says_so(tmp_path, capsys):
    repo = _repo(tmp_path / "repo", PIPELINE)
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert 0 == main(["run", str(repo), "--color", "never"])
    out = capsys.readouterr().out
    assert "found-marker" in out
    assert 0 == main(["show", "1", "--color", "never"])
    first = capsys.readouterr().out
    assert "cache miss out-" in first and "saved" in first
    assert 0 == main(["show", "2", "--color", "never"])
    second = capsys.readouterr().out
    assert "cache hit out-" in second and "KiB" in second


def test_validate_names_a_bad_key_where_it_is(tmp_path):
    bad = PIPELINE.replace("hashFiles('.sauci.yml')", "env.SECRET")
    (tmp_path / ".sauci.yml").write_text(bad)
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "validate", str(tmp_path), "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 2 == result.returncode
    assert ".sauci.yml:7:12: 'key' of 'cache' in step 'build'" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_limit_comes_from_flags_and_environment(monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    add_policy_options(parser)
    overrides = policy_overrides(parser.parse_args(["--cache-limit", "500MiB"]))
    assert 500 * 1024**2 == load_settings(overrides).cache_limit
    monkeypatch.setenv("SAUCI_CACHE_LIMIT", "0")
    assert 0 == load_settings({}).cache_limit
    monkeypatch.delenv("SAUCI_CACHE_LIMIT")
    assert 2 * 1024**3 == load_settings({}).cache_limit
