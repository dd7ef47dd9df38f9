"""Names a pusher chooses: branch names made of shell syntax or shaped like
options, a step name that climbs out of the logs directory, a commit message
and author with terminal escapes. None runs as a command, none makes a file
outside the data dir, none reaches a terminal through `sauci show`/`builds`.

(A newline or another control character cannot be in a ref name: git
refuses it at push, before SauCI sees it.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from security_helpers import GIT, git

from sauci.core.models import Status


def _branches(canary: Path) -> list[str]:
    """Branch names that run ``touch <canary>/cN`` wherever a shell or git
    option parser takes them for what they look like."""
    c = f"{canary}/"
    return [
        f"$(touch${{IFS}}{c}c1)",
        f"`touch${{IFS}}{c}c2`",
        f"x;touch${{IFS}}{c}c3;",
        f"--upload-pack=touch${{IFS}}{c}c4",
        f"-x|touch${{IFS}}{c}c5&",
        "$(touch${IFS}pwned-relative)",
    ]


def _cli(*args: str) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "sauci", *args], capture_output=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stderr
    return result.stdout + result.stderr


def test_hostile_branch_and_step_names_run_nothing_and_write_nowhere(namespace_target):
    target = namespace_target
    canary = target.base / "canary"
    canary.mkdir(mode=0o755)
    escape = f"{'../' * 12}{str(target.base).lstrip('/')}/escaped"
    pipeline = (
        "steps:\n"
        "  branch:\n"
        '    run: echo "branch=[$SAUCI_BRANCH]"\n'
        f"  {escape!r}:\n"
        "    run: echo climbing\n"
        f"    artifacts: '*.txt'\n"
    )
    sha = target.origin.commit(pipeline, files={"a.txt": "artifact\n"}, message="names")
    branches = _branches(canary)
    git(
        target.origin.work,
        "push",
        "-q",
        "-f",
        "origin",
        *[f"HEAD:refs/heads/{b}" for b in branches],
    )

    builds = {b: target.served.build_of(sha, f"refs/heads/{b}") for b in branches}

    for branch, build in builds.items():
        logs = target.served.logs(build)
        assert (Status.PASSED, branch) == (build.status, build.branch), logs
        assert f"branch=[{branch}]\n".encode() in logs["branch"]
        for step in target.served.store().list_steps(build.id):
            assert Path(step.log_path).resolve().is_relative_to(target.data / "logs")
    assert [] == sorted(os.listdir(canary))
    planted = [target.origin.work, target.origin.bare, target.data, target.base]
    assert [] == [str(p) for d in planted for p in d.rglob("pwned-relative*")]
    assert [] == [str(p) for p in target.base.glob("escaped*")]
    assert [] == [str(p) for p in Path("/").glob("escaped*")]

    listing = _cli("builds", "--data-dir", str(target.data), "--color", "never", "--limit", "500")
    for branch in branches:
        assert branch.encode() in listing


def test_terminal_escapes_in_a_commit_do_not_reach_the_terminal(namespace_target):
    target = namespace_target
    title = "\x1b]0;owned-title\x07"
    message = f"{title}\x1b[2J\x1b[31mred\x1b[0m innocent fix"
    author = f"Mallory{title}\x1b[2J"
    work = target.origin.work
    (work / ".sauci.yml").write_text("steps:\n  hello:\n    run: echo hello\n")
    env = {"GIT_AUTHOR_NAME": author, "GIT_COMMITTER_NAME": author}
    git(work, "add", "-A")
    subprocess.run(
        [*GIT, "commit", "-q", "--allow-empty", "-m", message],
        cwd=work,
        check=True,
        env={**os.environ, **env},
    )
    sha = git(work, "rev-parse", "HEAD").strip()
    target.origin.push("refs/heads/escapes")
    build = target.served.build_of(sha, "refs/heads/escapes")
    assert "\x1b" in build.message + build.author  # the store keeps what was pushed

    data = str(target.data)
    for out in (
        _cli("builds", "--data-dir", data, "--color", "never", "--limit", "500"),
        _cli("show", str(build.id), "--data-dir", data, "--color", "never"),
    ):
        assert b"\x1b" not in out
        assert b"\x07" not in out
