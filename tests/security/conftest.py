"""Fixtures of the attacker's suite: real `sauci serve` processes, each with
markers placed where no step may reach them.

One namespace-sandboxed server is shared by the modules that only push to it
(each test pushes its own branch); servers whose policy or life differ
(Docker allowed, local, killed and restarted) are made by their modules.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import Target, outside_base, remove_tree, serve_target

# The private dockerd and the local busybox image of tests/sandbox, as fixtures
# of this directory too (one more dockerd when both directories run).
_spec = importlib.util.spec_from_file_location(
    "sauci_sandbox_fixtures", Path(__file__).parent.parent / "sandbox" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_sandbox_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sandbox_fixtures)
dockerd = _sandbox_fixtures.dockerd
busybox_image = _sandbox_fixtures.busybox_image
missing = _sandbox_fixtures.missing


@pytest.fixture(scope="session")
def require_namespace() -> None:
    if shutil.which("bwrap") is None:
        missing("bwrap", "apt-get install bubblewrap")


@pytest.fixture(scope="session")
def namespace_target(
    require_namespace: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A `sauci serve` with the default policy (namespace sandbox), shared by
    the tests that only push to it."""
    base = outside_base("sauci-security-ns-")
    target = None
    try:
        # Small log quotas, per step and per build, for the tests that flood them.
        quotas = {"SAUCI_LOG_LIMIT": "1MiB", "SAUCI_BUILD_LOG_LIMIT": "3MiB"}
        target = serve_target(tmp_path_factory.mktemp("ns"), base, env=quotas)
        yield target
    finally:
        if target is not None:
            target.served.stop()
        remove_tree(base)


@pytest.fixture
def fresh_base() -> Iterator[Path]:
    """A 0711 directory outside /tmp for one test's server, removed after."""
    base = outside_base("sauci-security-")
    try:
        yield base
    finally:
        remove_tree(base)
