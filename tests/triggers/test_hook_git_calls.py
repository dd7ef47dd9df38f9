"""Installing the hook asks git as little as it can: `sauci serve` does it for
every repository at each start (issue 'Operations that tell the truth', item 6)."""

from __future__ import annotations

import pytest

import sauci.triggers.hooks as hooks
from sauci.exceptions import SourceUnavailableError
from sauci.triggers import install_hook


@pytest.fixture
def git_calls(monkeypatch):
    calls: list[tuple[str, ...]] = []
    real = hooks.run_git

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hooks, "run_git", counted)
    return calls


def test_a_bare_repository_takes_one_git_call(tmp_path, remote, git_calls):
    bare, _clone = remote
    hook = install_hook(bare, tmp_path / "spool")
    assert bare / "hooks" / "post-receive" == hook
    assert 1 == len(git_calls)


def test_a_work_tree_takes_two(tmp_path, work_repo, git_calls):
    hook = install_hook(work_repo, tmp_path / "spool")
    assert work_repo / ".git" / "hooks" / "post-commit" == hook
    assert 2 == len(git_calls)


def test_a_directory_that_is_no_repository_says_so(tmp_path):
    with pytest.raises(SourceUnavailableError, match="is not a git repository"):
        install_hook(tmp_path, tmp_path / "spool")
