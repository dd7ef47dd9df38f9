"""GitSource (a local repository, worktree slots) and MirrorSource (a repository
known by URL, through a mirror) keep every promise of the Source protocol."""

from __future__ import annotations

import pytest

from sauci.source.git import GitSource
from sauci.source.mirrors import MirrorSource
from sauci.testing.source import SourceConformance


class TestGitSource(SourceConformance):
    @pytest.fixture
    def make_source(self):
        return GitSource


class TestMirrorSource(SourceConformance):
    @pytest.fixture
    def make_source(self, tmp_path):
        return lambda repo: MirrorSource(f"file://{repo}", tmp_path / "mirrors")
