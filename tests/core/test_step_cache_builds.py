"""Step caches in real builds (local sandbox): restored before the step, saved
after it passes, hit or miss and size in the step's reason; pip and uv
pointed at the repository's download cache."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from sauci import Settings, run_pipeline
from sauci.core.cache_store import CacheStore
from sauci.core.pipeline import parse_pipeline

PIPELINE = """\
steps:
  build:
    run: |
      if [ -f out/marker ]; then echo "found $(cat out/marker)"; else mkdir -p out; echo made > out/marker; fi
      echo "pip=$PIP_CACHE_DIR uv=$UV_CACHE_DIR own=${SAUCI_CACHE_DIR:-unset}"
      test "${FAIL:-0}" = 0
    cache:
      paths: [out]
      key: "out-${{ hashFiles('dep.txt') }}"
      restore_keys: [out-]
"""


def _build(tmp_path: Path, n: int, dep: str = "a", text: str = PIPELINE, **env: str):
    ws = tmp_path / f"ws{n}"
    ws.mkdir()
    (ws / "dep.txt").write_text(dep)
    pipeline = parse_pipeline(text)
    settings = Settings(data_dir=tmp_path / "data")
    outcome = run_pipeline(
        pipeline, ws, settings=settings, repo="demo", ref="refs/heads/main", secrets=env
    )
    step = outcome.steps[0]
    log = Path(step.log_path or "").read_text()
    return step, log


def test_second_build_hits_and_a_changed_key_restores_by_prefix(tmp_path: Path):
    first, log = _build(tmp_path, 1)
    assert "passed" == first.status
    assert first.reason is not None and first.reason.startswith("cache miss out-")
    assert "saved" in first.reason
    assert "found" not in log

    second, log = _build(tmp_path, 2)
    assert second.reason is not None and second.reason.startswith("cache hit out-")
    assert "found made" in log

    third, log = _build(tmp_path, 3, dep="b")  # new key: the old entry by its prefix
    assert third.reason is not None and "cache miss" in third.reason
    assert "restored out-" in third.reason and "saved" in third.reason
    assert "found made" in log


def test_a_failed_step_saves_nothing(tmp_path: Path):
    failing = PIPELINE.replace('"${FAIL:-0}" = 0', "1 = 0")
    step, _ = _build(tmp_path, 1, text=failing)
    assert "failed" == step.status
    assert not list((tmp_path / "data" / "cache").rglob("*.tar"))


def test_pip_and_uv_use_the_repository_download_cache(tmp_path: Path):
    _, log = _build(tmp_path, 1)
    tools = CacheStore(tmp_path / "data" / "cache" / "steps").tools_dir("demo", "main")
    assert f"pip={tools / 'pip'} uv={tools / 'uv'} own={tools}" in log


def test_a_pipeline_keeps_its_own_pip_cache_but_never_names_the_bound_directory(tmp_path: Path):
    text = PIPELINE.replace("steps:", "env:\n  PIP_CACHE_DIR: mine\n  SAUCI_CACHE_DIR: /\nsteps:")
    _, log = _build(tmp_path, 1, text=text)
    tools = CacheStore(tmp_path / "data" / "cache" / "steps").tools_dir("demo", "main")
    assert f"pip=mine uv={tools / 'uv'} own={tools}" in log


def _wheel(path: Path) -> None:
    """A one-module wheel, made by hand (no build backend needed offline)."""
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, body in {**files, "tinypkg-1.0.dist-info/RECORD": record}.items():
            wheel.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), body)  # same bytes


def test_an_install_pipeline_reuses_its_venv(tmp_path: Path):
    """``python -m venv`` then ``pip install``; the second build finds the venv."""
    text = f"""\
steps:
  install:
    run: |
      [ -d .venv ] && echo "venv restored" || {sys.executable} -m venv .venv
      .venv/bin/python -m pip install -q --no-index ./tinypkg-1.0-py3-none-any.whl
      .venv/bin/python -c "import tinypkg; print(tinypkg.VALUE)"
    timeout: 300
    cache:
      paths: [.venv]
      key: "venv-${{{{ hashFiles('*.whl') }}}}"
"""
    for n in (1, 2):
        ws = tmp_path / f"ws{n}"
        ws.mkdir()
        _wheel(ws / "tinypkg-1.0-py3-none-any.whl")
        outcome = run_pipeline(
            parse_pipeline(text),
            ws,
            settings=Settings(data_dir=tmp_path / "data"),
            repo="demo",
            ref="refs/heads/main",
        )
        step = outcome.steps[0]
        log = Path(step.log_path or "").read_text()
        assert "passed" == step.status, log
        assert "42" in log
    assert "venv restored" in log
    assert step.reason is not None and step.reason.startswith("cache hit venv-")
