"""`sauci validate` says what `sauci run` will say about a step its sandbox cannot
run (services, an image, network: false), at the same file:line:col, exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

PIPELINE = """\
steps:
  test:
    run: echo never-ran
    services:
      - name: db
        image: postgres:16
  lint:
    run: echo never-ran
    image: python:3.12
  offline:
    run: echo never-ran
    network: false
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    monkeypatch.delenv("SAUCI_UNENFORCED_LIMITS", raising=False)


def _repo(path: Path, pipeline: str) -> Path:
    path.mkdir(parents=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "first"], cwd=path, check=True)
    return path


def sauci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _located(text: str) -> list[str]:
    """'line:col: message' of each problem, whichever copy of the file it names."""
    return re.findall(r"\.sauci\.yml:(\d+:\d+: .*)", text)


EXPECTED = [
    "4:5: sandbox 'local' cannot run services (step 'test'): "
    "use --sandbox docker, or 'sandbox: docker' in the step",
    "9:5: sandbox 'local' cannot run images (step 'lint'): "
    "use --sandbox docker, or 'sandbox: docker' in the step",
    "12:5: sandbox 'local' cannot turn the network off (step 'offline'): "
    "use --sandbox namespace, or 'sandbox: namespace' in the step",
]


def test_validate_and_run_refuse_the_same_steps_with_the_same_words(tmp_path):
    repo = _repo(tmp_path / "repo", PIPELINE)
    validate = sauci("validate", str(repo))
    run = sauci("run", str(repo))
    assert (2, EXPECTED) == (validate.returncode, _located(validate.stdout))
    assert (2, EXPECTED) == (run.returncode, _located(run.stderr))
    assert "never-ran" not in run.stdout + run.stderr  # refused before any step ran


def test_validate_with_a_sandbox_that_can_passes(tmp_path):
    repo = _repo(tmp_path / "repo", PIPELINE)
    result = sauci("validate", str(repo), "--sandbox", "docker")
    assert 0 == result.returncode, result.stdout
    assert "is valid: 3 steps" in result.stdout


def test_validate_names_the_sandbox_it_was_given(tmp_path):
    repo = _repo(tmp_path / "repo", PIPELINE)
    result = sauci("validate", str(repo), "--sandbox", "namespace")
    located = _located(result.stdout)
    assert 2 == result.returncode
    assert 2 == len(located), located
    assert all("sandbox 'namespace' cannot" in line for line in located)


def test_an_unknown_sandbox_is_a_usage_error_with_a_hint(tmp_path):
    repo = _repo(tmp_path / "repo", PIPELINE)
    result = sauci("validate", str(repo), "--sandbox", "dokcer")
    assert 2 == result.returncode
    assert "unknown sandbox 'dokcer'; did you mean 'docker'?" in result.stderr


def test_a_step_naming_its_own_sandbox_is_checked_against_it(tmp_path):
    repo = _repo(
        tmp_path / "repo",
        "steps:\n  t:\n    run: echo never-ran\n    sandbox: namespace\n    services: [redis]\n",
    )
    validate = sauci("validate", str(repo), "--sandbox", "docker")  # the flag does not reach it
    run = sauci("run", str(repo))
    expected = [
        "5:5: sandbox 'namespace' cannot run services (step 't'): use 'sandbox: docker' in the step"
    ]
    assert (2, expected) == (validate.returncode, _located(validate.stdout))
    assert (2, expected) == (run.returncode, _located(run.stderr))


def test_warn_setting_lets_both_run_without_the_demand(tmp_path):
    repo = _repo(tmp_path / "repo", "steps:\n  t:\n    run: echo ran-anyway\n    network: false\n")
    env = {"SAUCI_UNENFORCED_LIMITS": "warn"}
    validate = sauci("validate", str(repo), env=env)
    run = sauci("run", str(repo), env=env)
    assert 0 == validate.returncode, validate.stdout
    assert 0 == run.returncode, run.stderr
    assert "ran-anyway" in run.stdout


def test_run_with_the_suggested_sandbox_runs_the_step(tmp_path):
    import shutil
    import tempfile

    if shutil.which("bwrap") is None:
        pytest.skip("the namespace sandbox needs bubblewrap")
    repo = _repo(tmp_path / "repo", "steps:\n  t:\n    run: echo isolated\n    network: false\n")
    assert 2 == sauci("run", str(repo)).returncode
    # a data dir the step's unprivileged uid can reach (tmp_path's parents are 0700)
    data = Path(tempfile.mkdtemp(prefix="sauci-vs-", dir="/tmp"))
    try:
        data.chmod(0o711)
        run = sauci("run", str(repo), "--sandbox", "namespace", env={"SAUCI_DATA_DIR": str(data)})
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert 0 == run.returncode, run.stdout + run.stderr
    assert "isolated" in run.stdout
