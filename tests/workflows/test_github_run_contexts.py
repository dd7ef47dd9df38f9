"""The contexts and functions of GitHub's expression language as a job sees
them under `sauci run`: ``github.workspace`` and ``runner.temp`` are the matrix
entry's own (its copy of the workspace, its temp folder), not the planner's;
``strategy``, ``job``, ``runner``, ``vars``, ``inputs``; ``join``,
``contains`` on arrays and strings, ``format`` with escaped braces,
``hashFiles`` with several patterns and ``!``; a step's
``continue-on-error`` written as an expression over an earlier step; the
default shell (``bash -e``, no pipefail), ``bash`` and a custom ``cmd {0}``."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
name: Contexts
on: push
jobs:
  ctx:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        part: [a, b]
    steps:
      - run: |
          test "${{ github.workspace }}" = "$GITHUB_WORKSPACE"
          test "${{ github.workspace }}" = "$PWD"
          test -d "${{ runner.temp }}" && test "${{ runner.temp }}" = "$RUNNER_TEMP"
          echo "ws-ok ${{ matrix.part }}"
      - run: >-
          echo "wf=${{ github.workflow }} run=${{ github.run_id }}
          idx=${{ strategy.job-index }}/${{ strategy.job-total }} os=${{ runner.os }}
          status=${{ job.status }} vars=[${{ vars.NOPE }}] inputs=[${{ inputs.level }}]"
      - run: >-
          echo "join=${{ join(fromJSON('["p","q"]'), '+') }}
          fmt=${{ format('{{{0}}}-{1}', matrix.part, 'z') }}
          has=${{ contains(fromJSON('["a","b"]'), matrix.part) }}/${{ contains('Hello', 'ELL') }}/${{ contains(fromJSON('["ab"]'), 'a') }}"
      - run: echo x > one.lock && echo y > two.lock && echo z > skip.lock
      - run: >-
          echo "hash=${{ hashFiles('one.lock', 'two.lock') }}
          excl=${{ hashFiles('*.lock', '!skip.lock') }} out=[${{ hashFiles('../**', '/etc/passwd') }}]"
      - id: first
        run: "true"
      - continue-on-error: ${{ steps.first.outcome == 'success' }}
        run: exit 4
      - run: echo after-tolerated-${{ matrix.part }}
      - run: false | echo "no pipefail without shell"
      - shell: bash
        run: false | echo "pipefail with shell bash"
        continue-on-error: true
      - shell: python3 -u {0}
        run: print("custom", "shell")
"""


def sauci_run(tmp_path: Path, monkeypatch, files: dict[str, str]) -> tuple[int, str]:
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    repo = tmp_path / "repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_contexts_and_functions_as_a_matrix_entry_sees_them(tmp_path: Path, monkeypatch) -> None:
    code, out = sauci_run(tmp_path, monkeypatch, {".github/workflows/ci.yml": WORKFLOW})
    assert 0 == code, out
    both = hashlib.sha256(
        hashlib.sha256(b"x\n").digest() + hashlib.sha256(b"y\n").digest()
    ).hexdigest()
    for part, index in (("a", 0), ("b", 1)):
        assert f"ws-ok {part}" in out
        assert re.search(
            rf"wf=Contexts run=[1-9]\d* idx={index}/2 os=Linux status=success vars=\[\] inputs=\[\]",
            out,
        ), out
        assert f"join=p+q fmt={{{part}}}-z has=true/true/false" in out
        assert f"after-tolerated-{part}" in out
    assert 2 == out.count(f"hash={both} excl={both} out=[]"), out
    assert 2 == out.count("failed with exit code 4 after"), out
    # GitHub's shells: none named is `bash -e {0}`, `bash` adds pipefail, `cmd {0}` is custom.
    assert 2 == out.count("│ no pipefail without shell"), out
    assert 2 == out.count('with shell bash": failed with exit code 1'), out
    assert 2 == out.count("│ custom shell"), out
    assert 4 == out.count("(continue-on-error)"), out


COMPOSITE = """\
name: Setup
inputs:
  greeting:
    default: hello
  who:
    required: true
runs:
  using: composite
  steps:
    - run: echo "${{ inputs.greeting }} ${{ inputs.who }} from $SCOPE"
      shell: bash
    - run: echo "COMPOSITE_RAN=yes" >> "$GITHUB_ENV"
      shell: bash
"""

USES_COMPOSITE = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/setup
        env:
          SCOPE: the-step
        with:
          who: ${{ github.event_name }}
      - run: echo "after=$COMPOSITE_RAN"
"""


def test_a_local_composite_action_runs_its_steps_in_the_job(tmp_path: Path, monkeypatch) -> None:
    files = {
        ".github/workflows/ci.yml": USES_COMPOSITE,
        ".github/actions/setup/action.yml": COMPOSITE,
    }
    code, out = sauci_run(tmp_path, monkeypatch, files)
    assert 0 == code, out
    assert "│ hello push from the-step" in out
    assert "│ after=yes" in out
