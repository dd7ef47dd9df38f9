"""Adapters resolve by alias or dotted path; the git Source makes exact workspaces."""

from __future__ import annotations

import subprocess

import pytest

from sauci.exceptions import PluginError, SourceError
from sauci.plugins import load_class, load_sandbox
from sauci.source.git import GitSource

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@e.com"]


def test_builtin_alias_and_dotted_path_resolve():
    from sauci.sandbox.local import LocalSandbox

    assert load_class("sauci.sandboxes", "local") is LocalSandbox
    assert load_class("sauci.sandboxes", "sauci.sandbox.local:LocalSandbox") is LocalSandbox
    assert isinstance(load_sandbox("local"), LocalSandbox)


def test_typo_gets_did_you_mean():
    with pytest.raises(PluginError, match="unknown sandbox 'locl'; did you mean 'local'"):
        load_class("sauci.sandboxes", "locl")


def test_broken_dotted_path_is_a_plugin_error():
    with pytest.raises(PluginError, match="cannot be loaded"):
        load_class("sauci.sandboxes", "nowhere.module:Thing")


def test_checkout_is_at_the_exact_sha_and_removed_cleanly(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "f").write_text("one")
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "one"], cwd=repo, check=True)
    source = GitSource(repo)
    first = source.resolve("HEAD")
    (repo / "f").write_text("two")
    subprocess.run([*GIT, "commit", "-qam", "two"], cwd=repo, check=True)
    ws = source.checkout(first, tmp_path / "ws")
    assert (ws / "f").read_text() == "one"
    commit = source.commit("HEAD")
    assert (
        commit.message == "two"
        and commit.ref == "refs/heads/main"
        and commit.author.startswith("T <")
    )
    source.remove(ws)
    assert not ws.exists()
    listing = subprocess.run(
        ["git", "worktree", "list"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert str(ws) not in listing


def test_source_errors_are_clear(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        GitSource(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="not inside a git repository"):
        GitSource(tmp_path / "plain")
