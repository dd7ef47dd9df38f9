"""Reading, checking and writing ``.sauci.yml`` pipeline files.

Every problem in a file is collected in one pass and raised together as one
:class:`~sauci.exceptions.PipelineError`, each located to its line and
column. No input makes these functions raise anything else.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sauci._logging import get_logger
from sauci.core.models import DEFAULT_TIMEOUT, Pipeline, Schedule, Step
from sauci.core.pipeline._units import parse_duration, parse_size
from sauci.exceptions import ConfigError, PipelineError, Problem

if TYPE_CHECKING:
    from sauci.core.demands import SandboxCapabilities
    from sauci.core.pipeline._nodes import Checker
    from sauci.core.resources import Resources

# parse_duration and parse_size are public so that settings (sauci.toml,
# SAUCI_* variables) read "1h" and "512MiB" exactly as pipeline files do.
__all__ = [
    "dump_pipeline",
    "load_pipeline",
    "parse_duration",
    "parse_pipeline",
    "parse_size",
    "validate_pipeline",
]

log = get_logger(__name__)

FILENAME = ".sauci.yml"
_MAX_PROBLEMS = 100


def parse_pipeline(
    text: str | bytes,
    filename: str = FILENAME,
    *,
    max_timeout: float | None = None,
    sandboxes: Collection[str] | None = None,
    capabilities: SandboxCapabilities | None = None,
    network: bool = True,
    max_resources: Resources | None = None,
) -> Pipeline:
    """The pipeline in ``text``; raises PipelineError listing every problem.

    ``max_timeout`` (seconds) caps step timeouts: a larger ``timeout`` is a
    problem, and steps without one get the cap if it is below the default.
    ``sandboxes`` are the names a step's ``sandbox:`` may give (a server's
    policy); None allows any name. A module path is never allowed.
    ``capabilities``: what the sandboxes that will run the steps can do; a
    step asking for more (services, an image, ``network: false``, a limit)
    is a problem at its key. None checks nothing of the kind.
    ``network`` False (the server's policy) makes ``network: true`` a problem.
    ``max_resources``: the server's per-build maximum; a ``resources:`` above
    it is a problem at its key.
    """
    pipeline, problems = _check(
        text, filename, max_timeout, sandboxes, capabilities, network, max_resources
    )
    if pipeline is None:
        raise PipelineError(problems)
    return pipeline


def validate_pipeline(
    text: str | bytes,
    filename: str = FILENAME,
    *,
    max_timeout: float | None = None,
    sandboxes: Collection[str] | None = None,
    capabilities: SandboxCapabilities | None = None,
    network: bool = True,
    max_resources: Resources | None = None,
) -> list[Problem]:
    """Every problem in ``text``, in file order; empty when it is a valid pipeline."""
    return _check(text, filename, max_timeout, sandboxes, capabilities, network, max_resources)[1]


def load_pipeline(
    path: str | os.PathLike[str],
    *,
    max_timeout: float | None = None,
    sandboxes: Collection[str] | None = None,
    capabilities: SandboxCapabilities | None = None,
    shown_as: str | None = None,
    network: bool = True,
    max_resources: Resources | None = None,
) -> Pipeline:
    """Read ``path``, or ``path/.sauci.yml`` when it is a directory.

    A missing or unreadable file is a ConfigError naming the path, or
    ``shown_as`` when given (the user's own file, of which ``path`` is a copy).
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        name = os.path.join(name, FILENAME)
    data = _read_file(name, shown_as or name)
    return parse_pipeline(
        data,
        shown_as or name,
        max_timeout=max_timeout,
        sandboxes=sandboxes,
        capabilities=capabilities,
        network=network,
        max_resources=max_resources,
    )


def dump_pipeline(pipeline: Pipeline) -> str:
    """YAML text for ``pipeline``; ``parse_pipeline`` turns it back into an equal one."""
    from sauci.core.pipeline._dump import dump_pipeline as dump  # yaml only when used

    return dump(pipeline)


def _read_file(name: str, shown: str) -> bytes:
    """The pipeline file's bytes, read only from a regular file of its own directory.

    The file is part of a pushed commit: a symlink out of the repository
    (``.sauci.yml -> /var/lib/sauci/...`` or ``/proc/self/environ``) would
    make the server read its own files, so one is refused, as are FIFOs and
    devices (which could block the runner).
    """
    base = os.path.realpath(os.path.dirname(os.path.abspath(name)))
    real = os.path.realpath(name)
    if os.path.commonpath([base, real]) != base:
        raise ConfigError(
            f"the pipeline file {shown} is a symbolic link out of its repository; "
            "SauCI reads a pipeline only from the repository"
        )
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise ConfigError(f"no pipeline file at {shown}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the pipeline file {shown}: {exc.strerror}") from exc
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ConfigError(f"the pipeline file {shown} is not a regular file")
        from sauci.core.pipeline._yaml import MAX_BYTES  # the parser (and yaml) reads it next

        return file.read(MAX_BYTES + 1)


def _check(
    text: str | bytes,
    filename: str,
    max_timeout: float | None,
    sandboxes: Collection[str] | None = None,
    capabilities: SandboxCapabilities | None = None,
    network: bool = True,
    max_resources: Resources | None = None,
) -> tuple[Pipeline | None, list[Problem]]:
    if max_timeout is not None and not max_timeout > 0:
        raise ConfigError(f"max_timeout must be more than 0 seconds, got {max_timeout!r}")
    from sauci.core.pipeline._nodes import MAX_NODES, Checker, TooManyNodes

    chk = Checker(filename)
    pipeline = None
    try:
        pipeline = _read(
            chk, text, filename, max_timeout, sandboxes, capabilities, network, max_resources
        )
    except TooManyNodes as exc:
        chk.add(
            exc.node,
            f"the file expands to more than {MAX_NODES} values (YAML aliases repeat what "
            "they point to); make it smaller",
        )
    except Exception as exc:  # a bug here must not become a crash of the caller
        log.exception("pipeline_parser_failed", file=filename)
        chk.add((1, 1), f"internal error while reading the pipeline ({exc!r}); please report it")
    if chk.problems or pipeline is None:
        return None, _tidy(chk.problems)
    return pipeline, []


def _read(
    chk: Checker,
    text: str | bytes,
    filename: str,
    max_timeout: float | None,
    sandboxes: Collection[str] | None,
    capabilities: SandboxCapabilities | None = None,
    network: bool = True,
    max_resources: Resources | None = None,
) -> Pipeline | None:
    from sauci.core.pipeline._build import build_steps
    from sauci.core.pipeline._schema import Reader
    from sauci.core.pipeline._yaml import MAX_BYTES, Located, compose, decode

    if len(text) > MAX_BYTES:
        chk.add((1, 1), f"the file is larger than {MAX_BYTES // 1024} KiB")
        return None
    if isinstance(text, bytes | bytearray):
        decoded = decode(bytes(text))
        if isinstance(decoded, Located):
            chk.add((decoded.line, decoded.column), decoded.message)
            return None
        text = decoded
    root = compose(text)
    if isinstance(root, Located):
        chk.add((root.line, root.column), root.message)
        return None
    chk.source = text
    reader = Reader(chk, max_timeout, sandboxes, network)
    reader.max_resources = max_resources
    env, specs = reader.document(root)
    kwargs_list = build_steps(chk, specs, reader.env_nodes)
    if chk.problems:
        return None
    if reader.network is not None:  # the pipeline's `network:`, for steps that do not say
        for kwargs in kwargs_list:
            kwargs.setdefault("network", reader.network)
    if max_timeout is not None and max_timeout < DEFAULT_TIMEOUT:
        for kwargs in kwargs_list:
            kwargs.setdefault("timeout", float(max_timeout))
    from sauci.core.pipeline._resources import declared_limits

    steps = [Step(**declared_limits(kwargs, reader.resources)) for kwargs in kwargs_list]
    if capabilities is not None:
        from sauci.core.pipeline._demands import check_demands

        check_demands(chk, specs, steps, capabilities)
        if chk.problems:
            return None
    schedules: tuple[Any, ...] = ()
    if reader.schedules:
        schedules = tuple(Schedule(cron=c, branch=b) for c, b in reader.schedules)
    try:
        return Pipeline(
            steps=steps,
            env=env,
            source=filename,
            schedules=schedules,
            runs_on=reader.runs_on,
            resources=reader.resources,
        )
    except PipelineError as exc:  # the backstop found what the checks above missed
        chk.problems.extend(exc.problems)
    return None


def _tidy(problems: list[Problem]) -> list[Problem]:
    """Sorted by position, without repeats (aliases visit a node more than once)."""
    unique = sorted(dict.fromkeys(problems), key=lambda p: (p.line, p.column))
    if len(unique) > _MAX_PROBLEMS:
        more = len(unique) - _MAX_PROBLEMS
        unique = unique[:_MAX_PROBLEMS]
        unique.append(
            Problem(file=unique[0].file, line=0, column=0, message=f"... and {more} more problems")
        )
    return unique
