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

import attrs
import pytest
from security_helpers import Origin, Served, clean_env, marker, outside_base, remove_tree

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


@attrs.define
class Target:
    """A served repository and everything of the server a step must not reach."""

    served: Served
    origin: Origin
    base: Path
    data: Path
    secrets_file: Path | None
    # The server's environment's secrets: name -> value.
    env_markers: dict[str, str]
    # The value of data/marker.txt.
    file_marker: str
    # Secrets the server holds for this repository, and for another one.
    granted: dict[str, str] = attrs.field(factory=dict)
    withheld: dict[str, str] = attrs.field(factory=dict)

    @property
    def marker_file(self) -> Path:
        return self.data / "marker.txt"

    def leaks(self) -> list[str]:
        """Every value no stored log, artifact or other file of the server may hold."""
        shadow = shadow_line()
        return [
            self.file_marker,
            *self.env_markers.values(),
            *self.withheld.values(),
            *([shadow] if shadow else []),
        ]


def shadow_line() -> str | None:
    """root's line of /etc/shadow, when this process can read it."""
    try:
        text = Path("/etc/shadow").read_text()
    except OSError:
        return None
    return next((line for line in text.splitlines() if line.startswith("root:")), None)


def serve_target(
    tmp: Path, base: Path, *, args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Target:
    """A server on a fresh repository with markers in its data dir and environment."""
    origin = Origin(tmp)
    data = base / "data"
    env_markers = {
        "SAUCI_ADMIN_PASSWORD": marker("admin"),
        "SAUCI_WEBHOOK_SECRET": marker("webhook"),
        "MARKER_VAR": marker("env"),
    }
    granted = {"TOKEN": marker("token"), "SHARED": marker("shared")}
    withheld = {"OTHER": marker("other-repo")}
    # Outside /tmp, so that the sandbox hides it because the policy says so.
    secrets_dir = base / "secrets"
    secrets_dir.mkdir(mode=0o700)
    secrets_file = secrets_dir / "secrets.toml"
    secrets_file.write_text(
        f'[{str(origin.bare)!r}]\nTOKEN = "{granted["TOKEN"]}"\n\n'
        f'["/srv/git/someone-else.git"]\nOTHER = "{withheld["OTHER"]}"\n'
    )
    server_env = clean_env(**env_markers, SAUCI_SECRET_SHARED=granted["SHARED"], **(env or {}))
    file_marker = marker("file")
    data.mkdir(mode=0o700)
    (data / "marker.txt").write_text(file_marker + "\n")
    served = Served(
        data,
        origin.bare,
        args=["--secrets-file", str(secrets_file), *args],
        env=server_env,
        # A module the pushed repository also commits would be importable from
        # here: the server runs in the pusher's clone (see test_policy).
        cwd=origin.work,
    )
    return Target(
        served=served,
        origin=origin,
        base=base,
        data=data,
        secrets_file=secrets_file,
        env_markers=env_markers,
        file_marker=file_marker,
        granted=granted,
        withheld=withheld,
    )


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
        target = serve_target(tmp_path_factory.mktemp("ns"), base)
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
