"""Moved to :mod:`sauci.workflows._gitfacts` (shared by the front ends); kept so the old name works."""

from __future__ import annotations

from sauci.workflows._gitfacts import commit_facts, default_branch

__all__ = ["commit_facts", "default_branch"]
