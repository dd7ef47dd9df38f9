"""Settings and where they come from.

Precedence, lowest first: built-in defaults < ``sauci.toml`` < environment
variables ``SAUCI_*`` < command-line flags (passed as ``overrides``).
``sauci.toml`` is looked for in the current repository's root, then at
``$SAUCI_CONFIG`` if set. Secret values never come from here: a server's
steps receive the secrets of its secrets file and ``SAUCI_SECRET_*``
variables (:mod:`sauci.core.secrets`) that their pipeline names.

The sandbox settings are the server's policy (docs/security.md): ``sandbox``
is where steps run, ``allowed_sandboxes`` what else a pipeline may ask for,
``network`` whether steps may reach the network. A pipeline can ask for
less, never for more.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci.core._converters import as_tuple
from sauci.core.labels import MAX_LABELS, lower_labels, parse_labels
from sauci.core.models import DEFAULT_BUILD_LOG_LIMIT, DEFAULT_LOG_LIMIT
from sauci.core.paths import default_data_dir
from sauci.exceptions import ConfigError

__all__ = ["MAX_LABELS", "Settings", "default_data_dir", "load_settings", "parse_labels"]


def _absolute(value: Any) -> Path:
    """``value`` as an absolute path: steps run in other directories, where a
    relative data dir would name another place."""
    return Path(os.path.abspath(Path(value).expanduser()))


def _names(value: Any) -> tuple[str, ...]:
    """Sandbox names from ``"docker, namespace"`` or a list, unique, in order."""
    if isinstance(value, str):
        value = value.split(",")
    names = (str(item).strip() for item in value or ())
    return tuple(dict.fromkeys(name for name in names if name))


def _check_labels(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    parse_labels(value)


@attrs.frozen(kw_only=True)
class Settings:
    """Every setting SauCI reads, validated."""

    data_dir: Path = attrs.field(factory=default_data_dir, converter=_absolute)
    store: str = ""  # store URL; "" means SQLite in data_dir
    jobs: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    fail_fast: bool = False
    log_limit: int = attrs.field(default=DEFAULT_LOG_LIMIT, validator=attrs.validators.ge(1024))
    # All steps and matrix entries of one build together; a step still writing
    # when it is spent is ended ("log limit"), so no build can fill the disk.
    build_log_limit: int = attrs.field(
        default=DEFAULT_BUILD_LOG_LIMIT, validator=attrs.validators.ge(1024)
    )
    # Bytes of one step's artifacts together (sauci.core.artifacts'
    # DEFAULT_ARTIFACT_LIMIT); a file past it is not kept, the step's reason
    # says so (docs/security.md#limits).
    artifact_limit: int = attrs.field(default=4 * 1024**3, validator=attrs.validators.ge(0))
    max_timeout: float | None = None  # cap on any step's timeout, seconds
    # The per-build maximum a pipeline's `resources:` may declare (None: the
    # machine's capacity for cpus, no cap for memory); docs/serve.md.
    max_build_cpus: float | None = None
    max_build_memory: int | None = None  # bytes
    # The most processes one step may have at once, whatever its `limits:`
    # say: a pipeline may set a lower limit, never a higher one (the
    # sandboxes' own default is 512); docs/security.md#limits.
    max_step_processes: int = attrs.field(default=4096, validator=attrs.validators.ge(1))
    grace: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    # Where steps run. "": the isolating default of the command (`sauci serve`
    # and `sauci worker`: namespace, refused when it cannot run; `sauci run`:
    # local, the user's own checkout). "local" under a server is the
    # operator's explicit statement that every pusher is trusted.
    sandbox: str = attrs.field(default="", converter=lambda v: str(v).strip())
    # The Docker sandbox's image for a step that names none (a GitHub job on
    # the runner with services runs in it); "": such a step errors.
    docker_image: str = ""
    # Sandboxes a pipeline step may ask for with `sandbox:`, besides the default.
    allowed_sandboxes: tuple[str, ...] = attrs.field(default=(), converter=_names)
    # Whether steps may reach the network (in sandboxes that can cut it). Off:
    # every step runs without it, and a pipeline's `network: true` is refused.
    network: bool = True
    # The VM sandbox where KVM cannot run a guest: boot under emulation (TCG,
    # seconds per boot) rather than refuse to start (docs/sandboxes.md).
    vm_allow_emulation: bool = False
    # A TOML file of secret values (docs/security.md); with SAUCI_SECRET_<NAME>
    # variables, the only source of the secrets a served pipeline may name.
    secrets_file: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(_absolute)
    )
    log_level: str = attrs.field(
        default="warning",
        validator=attrs.validators.in_(["debug", "info", "warning", "error"]),
    )
    log_format: str = attrs.field(
        default="console", validator=attrs.validators.in_(["console", "json"])
    )
    # A limit or isolation the chosen sandbox cannot enforce: "error" the step
    # (default), or "warn" in its log and run it anyway.
    unenforced_limits: str = attrs.field(
        default="error", validator=attrs.validators.in_(["error", "warn"])
    )
    # Bytes of step caches (and pip/uv download caches) kept per repository
    # under <data>/cache/steps; least recently used entries go first. 0: no caching.
    cache_limit: int = attrs.field(default=2 * 1024**3, validator=attrs.validators.ge(0))
    keep_builds: int | None = None  # logs and artifacts of the last N builds per repository
    keep_days: float | None = None  # ... or of the last D days
    # (repo, cron, branch) triples from [[sauci.schedules]] tables in sauci.toml
    schedules: tuple[tuple[str, str, str], ...] = attrs.field(default=(), converter=as_tuple)
    # Where artifacts are kept. Workers on other hosts point this at a shared
    # directory (NFS, a mounted volume) that the server's UI reads too.
    artifacts_dir: Path = attrs.field(
        default=attrs.Factory(lambda self: self.data_dir / "artifacts", takes_self=True),
        converter=_absolute,
    )
    # Distributed runs (docs/distributed.md). No broker: builds run in-process.
    broker: str = ""  # Celery broker URL, e.g. redis://host:6379/0
    worker_name: str = ""  # unique per worker; "" means this host's name
    labels: tuple[str, ...] = attrs.field(
        default=(), converter=lower_labels, validator=_check_labels
    )
    slots: int = attrs.field(default=2, validator=attrs.validators.ge(1))  # builds per worker
    # A worker's capacity for builds' declared cost; 0: this machine's.
    worker_cpus: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    worker_memory: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    heartbeat_interval: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    # Placement by declared cost: a worker is drained for a heavier build only
    # while lighter builds of other repositories are expected to wait at most
    # this long (seconds) for room elsewhere (sauci.core.drain).
    drain_wait: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    # A build that would take the last free worker whole, with no lighter build
    # of another repository in sight, waits this long (seconds) after it was
    # queued for lighter builds queued with it (sauci.core.placement, rule 4).
    place_defer: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    # A running build whose heartbeat stops this long is "worker lost".
    lost_timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    # Tries per build when its runner dies (a server killed mid-build, a lost
    # worker); then the build ends "errored", so a build that kills its runner
    # cannot make the server crash-loop.
    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    # Redis/SQS brokers hand an unacknowledged message to another worker after
    # this long. Correctness does not depend on it (a redelivered message whose
    # build is no longer queued is dropped); it bounds how long a message
    # taken by a worker that died before claiming it waits.
    visibility_timeout: float = attrs.field(default=3600.0, validator=attrs.validators.gt(0))
    # A store that stays unreachable this long (seconds) during a build ends
    # it "errored: store unavailable"; until then its writes are retried with
    # back-off, and its logs wait on disk (docs/storage.md, "What happens when").
    store_deadline: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    # Latent workers (docs/distributed.md): a server with a broker starts up to
    # launch_workers `sauci worker`s (launch_command, default the installed one)
    # when builds wait; they stop after launch_idle s with nothing to do.
    launch_workers: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    launch_command: str = ""
    launch_idle: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    # Where launched workers run: "process", "docker" (launch_image, on
    # launch_network, with launch_volumes "src:dst[:ro]") or "vm"; never a pipeline's choice.
    launcher: str = attrs.field(
        default="process", validator=attrs.validators.in_(["process", "docker", "vm"])
    )
    launch_image: str = ""
    launch_network: str = "host"
    launch_volumes: tuple[str, ...] = attrs.field(default=(), converter=_names)
    idle_exit: float = attrs.field(
        default=0.0, validator=attrs.validators.ge(0)
    )  # worker; 0: never

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.data_dir / 'sauci.db'}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"


_FIELDS = {f.name: f for f in attrs.fields(Settings)}
_INT = {
    "jobs",
    "log_limit",
    "build_log_limit",
    "artifact_limit",
    "max_step_processes",
    "cache_limit",
    "max_build_memory",
    "keep_builds",
    "slots",
    "worker_memory",
    "attempts",
    "launch_workers",
}
_FLOAT = {
    "max_timeout",
    "max_build_cpus",
    "grace",
    "keep_days",
    "heartbeat_interval",
    "lost_timeout",
    "drain_wait",
    "place_defer",
    "visibility_timeout",
    "store_deadline",
    "launch_idle",
    "idle_exit",
    "worker_cpus",
}
_BOOL = {"fail_fast", "network", "vm_allow_emulation"}


def _coerce(key: str, value: Any, where: str) -> Any:
    try:
        if key in _INT:
            if isinstance(value, str):
                from sauci.core.pipeline import parse_size

                return (
                    parse_size(value)
                    if key.endswith(("log_limit", "cache_limit", "artifact_limit", "_memory"))
                    else int(value)
                )
            return int(value)
        if key in _FLOAT:
            if isinstance(value, str) and key not in ("keep_days", "max_build_cpus", "worker_cpus"):
                from sauci.core.pipeline import parse_duration

                return parse_duration(value)
            return float(value)
        if key in _BOOL:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {key} has a bad value {value!r}") from exc
    if key == "schedules":
        return value
    if key == "labels":
        return parse_labels(value, where)
    if key in ("data_dir", "artifacts_dir", "secrets_file"):
        return _absolute(str(value))
    if key in ("allowed_sandboxes", "launch_volumes"):
        return _names(value)
    return value


def _from_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    section = data.get("sauci", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [sauci] must be a table")
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            continue  # other tables belong to other features
        if key == "schedules":
            out["schedules"] = _schedules(value, path)
            continue
        if key not in _FIELDS:
            import difflib

            hint = difflib.get_close_matches(key, _FIELDS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{extra}")
        out[key] = _coerce(key, value, str(path))
    return out


def _schedules(value: Any, path: Path) -> tuple[tuple[str, str, str], ...]:
    """``[[sauci.schedules]]`` tables: repo, cron, and an optional branch (default main)."""
    from sauci.core.cron import CronSchedule

    if not isinstance(value, list):
        raise ConfigError(f"{path}: schedules must be a list of tables ([[sauci.schedules]])")
    out = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict) or not {"repo", "cron"} <= set(item):
            raise ConfigError(f"{path}: schedule {i} needs 'repo' and 'cron'")
        unknown = set(item) - {"repo", "cron", "branch"}
        if unknown:
            raise ConfigError(
                f"{path}: schedule {i} has unknown key(s) {', '.join(sorted(unknown))}"
            )
        try:
            CronSchedule.parse(str(item["cron"]))
        except ValueError as exc:
            raise ConfigError(f"{path}: schedule {i}: {exc}") from exc
        out.append((str(item["repo"]), str(item["cron"]), str(item.get("branch", "main"))))
    return tuple(out)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, ``sauci.toml``, ``SAUCI_*`` variables and ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    candidates = []
    if environ.get("SAUCI_CONFIG"):
        candidates.append(Path(environ["SAUCI_CONFIG"]))
    candidates.append((cwd or Path.cwd()) / "sauci.toml")
    for path in candidates:
        if path.is_file():
            values.update(_from_toml(path))
            break
    for key in _FIELDS:
        env_value = environ.get(f"SAUCI_{key.upper()}")
        if env_value is not None and env_value != "":
            values[key] = _coerce(key, env_value, f"environment variable SAUCI_{key.upper()}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, "command line")
    try:
        return Settings(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad setting: {exc}") from exc
