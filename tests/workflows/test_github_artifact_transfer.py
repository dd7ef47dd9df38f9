"""upload-artifact then download-artifact between the jobs of one build, end to end
through `sauci run`: ``name``, ``pattern``, ``merge-multiple``, ``path`` and the
artifact's root, laid out as actions/download-artifact v4 lays them out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
on: push
jobs:
  build:
    strategy:
      matrix:
        part: [a, b]
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p out/deep && echo "${{ matrix.part }}" > "out/deep/part-${{ matrix.part }}.txt"
          echo secret > out/.hidden
      - uses: actions/upload-artifact@v4
        with:
          name: part-${{ matrix.part }}
          path: out/
  single:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir -p dist && echo wheel > dist/pkg.whl && echo no > dist/skip.txt
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: |
            dist/*
            !dist/skip.txt
  use:
    needs: [build, single]
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with: {name: dist, path: got-one}
      - uses: actions/download-artifact@v4
        with: {pattern: part-*, path: each}
      - uses: actions/download-artifact@v4
        id: merged
        with: {pattern: part-*, merge-multiple: true, path: merged}
      - run: |
          find got-one each merged -type f | sort | sed 's/^/found: /'
          cat merged/deep/part-b.txt
          echo "path=${{ steps.merged.outputs.download-path }}"
      - uses: actions/download-artifact@v4
        continue-on-error: true
        with: {name: missing}
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


def sauci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def repository(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    return repo


def test_download_artifact_lays_out_what_earlier_jobs_uploaded(tmp_path: Path) -> None:
    result = sauci("run", str(repository(tmp_path, WORKFLOW)))
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    found = sorted(
        "found: " + line.split("found: ", 1)[1]
        for line in out.splitlines()
        if "found: " in line and "sed " not in line
    )
    assert [
        "found: each/part-a/deep/part-a.txt",
        "found: each/part-b/deep/part-b.txt",
        "found: got-one/pkg.whl",
        "found: merged/deep/part-a.txt",
        "found: merged/deep/part-b.txt",
    ] == found
    assert "path=/" in out and out.split("path=", 1)[1].split()[0].endswith("/merged")
    assert "sauci: Artifact not found for name: missing" in out
    assert "Traceback" not in out


def test_a_download_from_another_repository_is_a_validation_error(tmp_path: Path) -> None:
    text = WORKFLOW.replace("with: {name: missing}", "with: {name: x, repository: o/r}")
    result = sauci("validate", str(repository(tmp_path, text)))
    assert 0 != result.returncode
    assert "ci.yml:" in result.stderr + result.stdout
    assert "download-artifact with 'repository' is not supported" in result.stderr + result.stdout


def test_a_symlinked_inbox_left_by_a_job_is_replaced_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    text = WORKFLOW.replace(
        "      - run: mkdir -p dist",
        f"      - run: ln -sfn {outside} .sauci-artifacts\n      - run: mkdir -p dist",
    )
    result = sauci("run", str(repository(tmp_path, text)))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert [] == list(outside.iterdir())
