"""The attacker's kit: a real `sauci serve` subprocess, a repository to push
hostile pipelines to, and the places where a leaked value could end up.

A served data dir must be reachable by the namespace sandbox's unprivileged
host uid (every directory above it o+x), and must not sit under a path the
sandbox hides anyway (/tmp, /home, /var/tmp...): else a test that the data
dir is hidden would pass whatever SauCI's own hiding does. So the data dir
lives under :func:`outside_base`, a 0711 directory made next to the
system's state (``/var/lib`` when writable), not under pytest's tmp_path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs
from polling import wait_for

from sauci.core.models import Build, Status
from sauci.sandbox.namespace import DEFAULT_HIDE
from sauci.storage import open_store
from sauci.typing import Store

GIT = ["git", "-c", "user.name=Mallory", "-c", "user.email=mallory@example.com"]
# Hidden by the namespace sandbox whatever SauCI's data-dir hiding does.
_ALREADY_HIDDEN = ("/tmp", *DEFAULT_HIDE)


def marker(what: str) -> str:
    """A value that appears nowhere unless it leaked."""
    return f"marker-{what}-{secrets.token_hex(8)}"


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    return subprocess.run(
        [*GIT, *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
    ).stdout


def outside_base(prefix: str) -> Path:
    """A fresh 0711 directory outside every path the namespace sandbox hides by default."""
    for parent in (os.environ.get("SAUCI_SECURITY_BASE"), "/var/lib", "/opt", os.getcwd()):
        if not parent or not os.access(parent, os.W_OK | os.X_OK):
            continue
        absolute = os.path.abspath(parent)
        if any(absolute == h or absolute.startswith(h + "/") for h in _ALREADY_HIDDEN):
            continue
        base = Path(tempfile.mkdtemp(prefix=prefix, dir=absolute))
        base.chmod(0o711)
        return base
    raise RuntimeError("no writable directory outside /tmp and /home; set SAUCI_SECURITY_BASE")


class Origin:
    """A bare repository (what the server watches) and a clone the attacker pushes from."""

    def __init__(self, tmp: Path) -> None:
        self.bare = tmp / "origin.git"
        self.work = tmp / "work"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(tmp, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")
        (self.work / ".sauci.yml").write_text("steps:\n  hello:\n    run: echo hello\n")
        git(self.work, "add", ".")
        git(self.work, "commit", "-q", "-m", "first")

    def commit(
        self, pipeline: str, *, files: Mapping[str, str] | None = None, message: str = "hostile"
    ) -> str:
        """Commit ``pipeline`` as .sauci.yml (and ``files``); returns the sha."""
        (self.work / ".sauci.yml").write_text(pipeline)
        for name, text in (files or {}).items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.work, "rev-parse", "HEAD").strip()

    def push(self, ref: str) -> None:
        """Push HEAD to ``ref`` (a full refs/heads/... name), forced."""
        git(self.work, "push", "-q", "-f", "origin", f"HEAD:{ref}")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without SauCI settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUCI_")}
    env.update(extra)
    return env


class Served:
    """A real ``python -m sauci serve`` subprocess on one bare repository."""

    def __init__(
        self,
        data: Path,
        repo: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.data = data
        self.repo = repo
        self.args = list(args)
        self.env = dict(clean_env() if env is None else env)
        self.env.setdefault("SAUCI_GRACE", "1s")
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (or start again, as a service manager would) and wait for the watch line."""
        argv = [sys.executable, "-m", "sauci", "serve", "--no-ui", "--repo", str(self.repo)]
        argv += ["--data-dir", str(self.data), *self.args]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"sauci serve: watching"):
                return
        raise AssertionError(f"sauci serve did not start (exit {self.proc.wait()})")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def store(self) -> Store:
        return open_store(f"sqlite:///{self.data / 'sauci.db'}")

    def build_of(self, sha: str, ref: str | None = None, timeout: float = 60) -> Build:
        """The finished build of ``sha`` (on ``ref``), waited for."""
        store = self.store()

        def done() -> Build | None:
            for build in store.list_builds(limit=200):
                if build.sha == sha and (ref is None or build.ref == ref) and build.status.done:
                    return build
            return None

        return wait_for(done, f"a finished build of {sha[:8]} on {ref or 'any ref'}", timeout)

    def logs(self, build: Build) -> dict[str, bytes]:
        """Every stored log of ``build``, by step name (b"" for a step with none)."""
        out = {}
        for step in self.store().list_steps(build.id):
            path = Path(step.log_path) if step.log_path else None
            out[step.name] = path.read_bytes() if path is not None and path.exists() else b""
        return out

    def step_statuses(self, build: Build) -> dict[str, Status]:
        return {s.name: s.status for s in self.store().list_steps(build.id)}


def files_under(root: Path, *, skip: Sequence[Path] = ()) -> Iterator[Path]:
    """Every regular file under ``root`` (symlinks not followed), but ``skip``."""
    skipped = {os.path.abspath(p) for p in skip}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if path in skipped or os.path.islink(path) or not os.path.isfile(path):
                continue
            yield Path(path)


def holders(values: Sequence[str | bytes], root: Path, *, skip: Sequence[Path] = ()) -> list:
    """``(file, value)`` for every file under ``root`` that holds one of ``values``."""
    wanted = [v.encode() if isinstance(v, str) else v for v in values]
    found = []
    for path in files_under(root, skip=skip):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [(str(path), v) for v in wanted if v in data]
    return found


def remove_tree(path: Path) -> None:
    """Remove a base dir, its steps' files (owned by the sandbox uid) included."""
    shutil.rmtree(path, ignore_errors=True)


# What a step tries to read of the server; every read it manages says "READ <path>".
_READS = """\
set +e
echo STEP-RAN
mkdir -p loot
for f in {paths}; do
  n=$(echo "$f" | tr / _)
  if cat "$f" > "loot/$n" 2>/dev/null; then echo "READ $f"; fi
  head -c 4096 "loot/$n"
done
env > loot/env.txt; cat loot/env.txt
cat /proc/*/environ > loot/environ.txt 2>/dev/null; tr '\\0' '\\n' < loot/environ.txt
tr '\\0' '\\n' < /proc/1/environ
(ps aux 2>/dev/null || ps) > loot/ps.txt 2>&1; cat loot/ps.txt
echo "named: [$SAUCI_ADMIN_PASSWORD] [$SAUCI_WEBHOOK_SECRET] [$MARKER_VAR] [$OTHER]"
true
"""
# Names of the server's environment and another repository's secret: asked for, never given.
ASKED_SECRETS = ["SAUCI_ADMIN_PASSWORD", "SAUCI_WEBHOOK_SECRET", "MARKER_VAR", "OTHER"]


def reads_pipeline(paths: Sequence[Path | str], *, extra: str = "") -> str:
    """A pipeline whose one step ``reads`` tries ``paths``, the environment of
    every process it can see, and secrets it is not granted, and keeps what it
    got as artifacts (``loot/``). ``extra``: more keys of the step."""
    script = _READS.format(paths=" ".join(str(p) for p in paths))
    body = "".join(f"      {line}\n" for line in script.splitlines())
    return (
        "steps:\n"
        "  reads:\n"
        f"    secrets: [{', '.join(ASKED_SECRETS)}]\n"
        "    artifacts: loot\n"
        f"{extra}"
        "    run: |\n"
        f"{body}"
    )


def reads_done(log: bytes) -> list[str]:
    """The paths a ``reads`` step says it read."""
    return [line[5:] for line in log.decode(errors="replace").splitlines() if line[:5] == "READ "]


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
    # Readable by anyone: only the sandbox's hiding keeps it from a step.
    secrets_dir = base / "secrets"
    secrets_dir.mkdir(mode=0o755)
    secrets_file = secrets_dir / "secrets.toml"
    secrets_file.write_text(
        f'[{str(origin.bare)!r}]\nTOKEN = "{granted["TOKEN"]}"\n\n'
        f'["/srv/git/someone-else.git"]\nOTHER = "{withheld["OTHER"]}"\n'
    )
    secrets_file.chmod(0o644)
    server_env = clean_env(**env_markers, SAUCI_SECRET_SHARED=granted["SHARED"], **(env or {}))
    file_marker = marker("file")
    data.mkdir(mode=0o700)
    (data / "marker.txt").write_text(file_marker + "\n")
    (data / "marker.txt").chmod(0o644)  # as for the secrets file
    served = Served(
        data,
        origin.bare,
        args=["--secrets-file", str(secrets_file), *args],
        env=server_env,
        # A module the pushed repository also commits would be importable from
        # here: the server runs in the pusher's clone (see test_hostile_policy).
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


def server_paths(target) -> list[str]:
    data = target.data
    return [
        str(target.marker_file),
        str(data / "sauci.db"),
        str(data / "sauci.db-wal"),
        str(data / "server.json"),
        str(target.secrets_file),
        "/etc/shadow",
        "/proc/1/root/etc/shadow",
    ]


def assert_nothing_leaked(target, build) -> None:
    """No marker in the build's reason, its stored logs, or any file of the data dir."""
    assert not any(value in (build.reason or "") for value in target.leaks())
    logs = target.served.logs(build)
    for name, log in logs.items():
        found = [value for value in target.leaks() if value.encode() in log]
        assert [] == found, f"step {name!r} logged a marker"
    # The logs, the store, the artifacts (what the step wrote and kept),
    # the workspaces: every file of the server but the marker itself.
    assert [] == holders(target.leaks(), target.data, skip=[target.marker_file])
