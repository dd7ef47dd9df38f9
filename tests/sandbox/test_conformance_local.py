"""LocalSandbox passes the public SandboxConformance suite.

With cgroups (when this machine lets the tests create them) the limit cases
run too; without them they are skipped, since a fork bomb or memory hog must
never run uncontained.
"""

from __future__ import annotations

import os

import pytest

from sauci.exceptions import SandboxError
from sauci.sandbox.local import TOKEN_VARIABLE, LocalSandbox
from sauci.testing.sandbox import SandboxConformance

PREFIX = f"sauci-conf{os.getpid()}-"


class TestLocalSandboxWithCgroups(SandboxConformance):
    @pytest.fixture
    def sandbox(self) -> LocalSandbox:
        try:
            return LocalSandbox(use_cgroups=True, grace=self.grace, cgroup_prefix=PREFIX)
        except SandboxError as exc:
            pytest.skip(f"cgroups cannot be created on this machine: {exc}")


class TestLocalSandboxWithoutCgroups(SandboxConformance):
    extra_env_names = frozenset({TOKEN_VARIABLE})  # how leftovers are found without cgroups

    @pytest.fixture
    def sandbox(self) -> LocalSandbox:
        return LocalSandbox(use_cgroups=False, grace=self.grace)
