"""Value objects that every part of SauCI passes around.

Everything here is an immutable attrs class; changed copies are made with
``attrs.evolve``. Times are float seconds since the epoch (UTC), durations are
float seconds, sizes are int bytes: plain numbers store the same way in every
back end.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import attrs

from sauci.core._converters import RETRY_KINDS, as_tuple, retry_kinds
from sauci.core._converters import frozen_map as _frozen_map
from sauci.core._converters import str_tuple as _str_tuple
from sauci.core.pipeline_parts import Schedule
from sauci.core.records import Artifact, Event, Repo, TestCase, Worker
from sauci.core.resources import Resources

if TYPE_CHECKING:  # a step's optional parts, built by the pipelines that use them
    from sauci.core.step_parts import Cache, Condition, Expansion, Service

__all__ = [
    "DEFAULT_AFTER_TIMEOUT",
    "DEFAULT_BUILD_LOG_LIMIT",
    "DEFAULT_LOG_LIMIT",
    "DEFAULT_SHELL",
    "DEFAULT_TIMEOUT",
    "RETRY_KINDS",
    "Artifact",
    "Build",
    "BuildOutcome",
    "BuildRequest",
    "EndedBy",
    "Event",
    "Limits",
    "Pipeline",
    "Repo",
    "Schedule",
    "Status",
    "Step",
    "StepResult",
    "StepRun",
    "TestCase",
    "When",
    "Worker",
    "request_again",
]

DEFAULT_TIMEOUT = 3600.0
DEFAULT_SHELL = ("bash", "-eo", "pipefail", "-c")
DEFAULT_LOG_LIMIT = 100 * 1024 * 1024  # one step's log
DEFAULT_BUILD_LOG_LIMIT = 1024 * 1024 * 1024  # all the logs of one build, every step together
DEFAULT_AFTER_TIMEOUT = 300.0  # Step.after_run's own limit (GitLab's after_script: 5 minutes)


class Status(enum.StrEnum):
    """The state of a build or a step.

    "failed" means a command said no; "errored" means SauCI or the
    environment could not give an answer.
    """

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERRORED = "errored"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING)

    def __str__(self) -> str:
        return self.value


class EndedBy(enum.StrEnum):
    """Why SauCI (not the command) ended a step."""

    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    OUT_OF_MEMORY = "out_of_memory"
    PROCESS_LIMIT = "process_limit"
    LOG_LIMIT = "log_limit"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class Limits:
    """Resource limits for one step; None means the sandbox default."""

    memory: int | None = None  # bytes
    processes: int | None = None
    cpu: float | None = None  # cores

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.memory, self.processes, self.cpu))


@attrs.frozen(kw_only=True)
class When:
    """Filters that decide whether a step runs for a build.

    Empty tuples match everything. Branch patterns are fnmatch globs; a
    pattern starting with "!" excludes.
    """

    branches: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    events: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)

    def matches(self, *, branch: str | None, event: str | None) -> bool:
        from fnmatch import fnmatchcase

        if self.events and event is not None and event not in self.events:
            return False
        if self.branches and branch is not None:
            includes = [p for p in self.branches if not p.startswith("!")]
            excludes = [p[1:] for p in self.branches if p.startswith("!")]
            if any(fnmatchcase(branch, p) for p in excludes):
                return False
            if includes and not any(fnmatchcase(branch, p) for p in includes):
                return False
        return True


def _service_tuple(items: Iterable[Service]) -> tuple[Service, ...]:
    return tuple(items)


def _check_services(instance: Any, attribute: Any, value: tuple[Service, ...]) -> None:
    names = [s.name for s in value]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate service names in {names!r}")


@attrs.frozen(kw_only=True)
class Step:
    """One command of a pipeline, after matrix expansion.

    ``needs`` None means "the step before me in file order"; an empty tuple
    means "no dependencies".
    """

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    run: tuple[str, ...] = attrs.field(converter=_str_tuple)
    shell: tuple[str, ...] = attrs.field(default=DEFAULT_SHELL, converter=_str_tuple)
    needs: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_str_tuple)
    )
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    retry_on: tuple[int, ...] = attrs.field(default=(), converter=as_tuple)  # empty: any failure
    # Kinds of failure tried again (RETRY_KINDS, or'ed with retry_on): sauci.core.step_retry.
    retry_when: tuple[str, ...] = attrs.field(default=(), converter=retry_kinds)
    allow_failure: bool = False
    when: When = attrs.field(factory=When)
    artifacts: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    junit: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    workdir: str | None = None
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    limits: Limits = attrs.field(factory=Limits)
    sandbox: str | None = None
    image: str | None = None
    network: bool | None = None
    weight: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    resources: Resources | None = None  # declared cost (sauci.core.resources); None: the build's
    matrix: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    services: tuple[Service, ...] = attrs.field(
        default=(), converter=_service_tuple, validator=_check_services
    )
    cache: Cache | None = None
    condition: Condition | None = None  # run or skip just before it starts (Condition)
    # Steps of one group (a workflow job's matrix entries) stop together
    # when one fails (sauci.core.fail_fast); None: only the build's fail-fast.
    fail_fast_group: str | None = None
    max_parallel: tuple[str, int] | None = None  # (group, n): n of the group run at once
    expansion: Expansion | None = None  # steps added in its place (sauci.core.expansion)
    # Before it runs, the artifacts kept by the steps it needs (directly or
    # not) are copied into its workspace (sauci.core.artifact_inputs).
    download_artifacts: bool = False
    # Artifacts of these ancestors copied in at their paths first (sauci.core.artifact_unpack).
    artifacts_from: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    own_workspace: bool = False  # runs in its own copy, as a matrix entry (entry_workspaces)
    # Run after each attempt however it ended, never changing its status (sauci.core.after_run).
    after_run: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    after_timeout: float = attrs.field(
        default=DEFAULT_AFTER_TIMEOUT, validator=attrs.validators.gt(0)
    )
    # (group, cancel-in-progress): one running and one waiting step per group
    # across the builds an executor runs (sauci.core.job_groups).
    concurrency: tuple[str, bool] | None = None

    def script(self) -> str:
        """The commands joined into one script for the shell."""
        return "\n".join(self.run)


def _schedule_tuple(items: Iterable[Schedule]) -> tuple[Schedule, ...]:
    return tuple(items)


def _step_tuple(steps: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(steps)


@attrs.frozen(kw_only=True)
class Pipeline:
    """A validated pipeline: top-level env and steps with resolved needs.

    Build one in code with ``Pipeline(steps=[Step(...), ...])`` or load one
    with :func:`sauci.load_pipeline`.
    """

    steps: tuple[Step, ...] = attrs.field(converter=_step_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    source: str | None = attrs.field(default=None, eq=False)  # file it came from, for messages
    schedules: tuple[Schedule, ...] = attrs.field(default=(), converter=_schedule_tuple)
    runs_on: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)  # worker labels
    resources: Resources | None = None  # the build's declared cost; None: the server default

    def __attrs_post_init__(self) -> None:
        from sauci.core.dag import check_graph

        check_graph(self.steps, source=self.source or "<pipeline>")

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each step's needs with the file-order default applied."""
        from sauci.core.dag import resolve_needs

        return resolve_needs(self.steps)


@attrs.frozen(kw_only=True)
class StepResult:
    """What a sandbox reports about one run of one step.

    ``exit_code`` is None when the process was ended by a signal; ``signal``
    then names it. ``ended_by`` and ``reason`` are set when SauCI ended it.
    """

    exit_code: int | None
    signal: int | None = None
    duration: float = 0.0
    ended_by: EndedBy | None = None
    reason: str | None = None
    log_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.ended_by is None


@attrs.frozen(kw_only=True)
class BuildRequest:
    """Everything needed to queue a build (what a trigger produces)."""

    repo: str
    ref: str = ""
    sha: str = ""
    event: str = "manual"  # push, manual, cron, cli, webhook, rerun
    priority: int = 0  # higher runs first
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    author: str = ""
    message: str = ""
    pusher: str = ""
    old_sha: str = ""
    reuse_from: int | None = None  # rerun failed: keep passed steps of this build
    attempt: int = 1  # > 1 when a build is tried again after its worker was lost
    # The build's identity beyond one store's numbering: its logs and
    # artifacts are kept under it, a copy keeps it. Not part of equality: two
    # requests for the same thing are the same request.
    uuid: str = attrs.field(factory=lambda: uuid4().hex, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Build:
    """A build as recorded in the store."""

    id: int
    repo: str
    ref: str = ""
    sha: str = ""
    event: str = "manual"
    status: Status = Status.QUEUED
    reason: str | None = None
    priority: int = 0
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    author: str = ""
    message: str = ""
    pusher: str = ""
    old_sha: str = ""
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    claimed_by: str | None = None
    reuse_from: int | None = None
    cancel_requested: str | None = None  # a reason, once someone asked to cancel
    # Distributed runs: the worker labels the pipeline asks for (`runs_on`),
    # which try this is (a build handed on after a lost worker is tried again
    # as a new build with attempt + 1), and the owner's last sign of life.
    runs_on: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    attempt: int = 1
    heartbeat_at: float | None = None
    # Unique across stores and database resets (see BuildRequest.uuid); ""
    # for a build recorded before SauCI kept one (its files use the old layout).
    uuid: str = ""

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/")


def request_again(build: Build, *, attempt: int | None = None) -> BuildRequest:
    """A request for ``build``'s commit again (a requeue or a retry), with
    everything it was queued with; ``attempt`` defaults to the build's."""
    # A new build: a new uuid, so that its files are its own.
    fields = {
        f.name: getattr(build, f.name) for f in attrs.fields(BuildRequest) if f.name != "uuid"
    }
    if attempt is not None:
        fields["attempt"] = attempt
    return BuildRequest(**fields)


@attrs.frozen(kw_only=True)
class StepRun:
    """One step of one build as recorded in the store."""

    build_id: int
    name: str
    position: int = 0  # order in the pipeline, for display
    status: Status = Status.QUEUED
    reason: str | None = None
    ended_by: EndedBy | None = None
    exit_code: int | None = None
    signal: int | None = None
    attempt: int = 0  # 0 until started; 1 on the first run, 2 on the first retry
    allow_failure: bool = False
    needs: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    started_at: float | None = None
    finished_at: float | None = None
    log_bytes: int = 0
    log_path: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def _run_tuple(steps: Iterable[StepRun]) -> tuple[StepRun, ...]:
    return tuple(steps)


@attrs.frozen(kw_only=True)
class BuildOutcome:
    """A finished build and its steps, as returned by :func:`sauci.run_pipeline`."""

    build: Build
    steps: tuple[StepRun, ...] = attrs.field(converter=_run_tuple)

    @property
    def status(self) -> Status:
        return self.build.status

    @property
    def ok(self) -> bool:
        return self.build.status is Status.PASSED

    def step(self, name: str) -> StepRun:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)
