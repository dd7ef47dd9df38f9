"""Facts about a build's commit, shared by the front ends (GitLab's ``rules``,
GitHub's ``on.push.paths``). What ``rules`` may ask of the commit that a build's options do not say:
its message (``CI_COMMIT_MESSAGE``), the files the push changed
(``changes:``) and the repository's default branch (``CI_DEFAULT_BRANCH``),
read with git from the build's workspace.

Only hex shas reach git (never an option or a ref name a push chose), the
command runs without a terminal, and any failure means "not known": an
empty message, and ``changes:`` holding as GitLab does without a base.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

__all__ = ["commit_facts", "default_branch", "git_merge_base"]

_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
_ZERO = re.compile(r"0+")
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
_MAX_FILES = 10_000


def _git(workspace: Path, *args: str) -> bytes | None:
    env = {**os.environ, **_ENV}
    try:
        done = subprocess.run(
            ["git", "-C", str(workspace), *args],
            capture_output=True,
            timeout=10,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def commit_facts(
    workspace: Path, sha: str, before: str
) -> tuple[str | None, tuple[str, ...] | None]:
    """(the commit's message, the paths changed since ``before``); None where unknown."""
    if not (workspace / ".git").exists() or not _SHA.fullmatch(sha):
        return None, None
    raw = _git(workspace, "log", "-1", "--format=%B", sha, "--")
    message = raw.decode("utf-8", "replace").rstrip("\n") if raw is not None else None
    changed = None
    if _SHA.fullmatch(before) and not _ZERO.fullmatch(before):
        names = _git(workspace, "diff", "--name-only", "-z", "--no-renames", before, sha, "--")
        if names is not None:
            paths = [p.decode("utf-8", "replace") for p in names.split(b"\0") if p]
            changed = tuple(paths) if len(paths) <= _MAX_FILES else None
    return message, changed


def git_merge_base(workspace: Path, base: str, sha: str) -> str | None:
    """The merge base of ``base`` (a sha or a full ref name) and commit ``sha``; None
    when unknown. Never an option: ``base`` must be hex or start with ``refs/``."""
    if not (workspace / ".git").exists() or not _SHA.fullmatch(sha):
        return None
    if not (_SHA.fullmatch(base) or base.startswith("refs/")):
        return None
    found = _git(workspace, "merge-base", base, sha)
    text = found.decode("ascii", "replace").strip() if found else ""
    return text if _SHA.fullmatch(text) else None


def default_branch(workspace: Path) -> str | None:
    """The repository's default branch: the remote's HEAD if the checkout has
    one, else the branch the repository's own HEAD names (a served bare
    repository's HEAD is its default branch); None when unknown."""
    if not (workspace / ".git").exists():
        return None
    remote = _git(workspace, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD")
    if remote:
        return remote.decode("utf-8", "replace").strip().partition("/")[2] or None
    common = _git(workspace, "rev-parse", "--git-common-dir")
    if not common:
        return None
    git_dir = workspace / common.decode("utf-8", "replace").strip()
    head = _git(workspace, f"--git-dir={git_dir}", "symbolic-ref", "--short", "-q", "HEAD")
    return head.decode("utf-8", "replace").strip() or None if head else None
