"""The parts of a step most steps leave out: service containers beside it, a
cache kept between builds, a condition decided just before it runs, and the
steps it stands for once they are known (an expansion).

Kept out of :mod:`sauci.core.models` (a step's fields only name them), so a
process imports them with the first pipeline that uses one: the pipeline
reader for ``services:`` and ``cache:``, the workflow front ends, the
sandboxes that run services. A one-step run builds none of their classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sauci.core._converters import frozen_map as _frozen_map
from sauci.core._converters import service_name_problem
from sauci.core._converters import str_tuple as _str_tuple

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "MAX_EXPANDED_STEPS",
    "Cache",
    "Condition",
    "Expansion",
    "Service",
]

MAX_EXPANDED_STEPS = 256  # steps one Expansion may add (GitHub's limit on a matrix)

DEFAULT_READY_TIMEOUT = 30.0  # seconds a service may take to be ready


def _check_service_name(instance: Any, attribute: Any, value: str) -> None:
    problem = service_name_problem(value)
    if problem:
        raise ValueError(f"service name {value!r} {problem}")


@attrs.frozen(kw_only=True)
class Service:
    """A container that runs beside a step (a database, a cache), for sandboxes
    with the ``services`` capability.

    ``command`` empty means the image's own; ``ready`` is a shell command run
    inside the service's container that exits 0 once it is ready (None: ready
    as soon as it started); ``ready_timeout`` is in seconds.
    """

    name: str = attrs.field(validator=_check_service_name)
    image: str = attrs.field(validator=attrs.validators.min_len(1))
    command: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    ready: str | None = None
    ready_timeout: float = attrs.field(default=DEFAULT_READY_TIMEOUT)

    @ready_timeout.validator
    def _positive(self, attribute: Any, value: float) -> None:
        if not value > 0:
            raise ValueError(f"ready_timeout must be more than 0 seconds, got {value!r}")

    @property
    def env_name(self) -> str:
        """The name as it appears in ``SAUCI_SERVICE_<NAME>_HOST``."""
        return self.name.upper().replace("-", "_")


@attrs.frozen(kw_only=True)
class Cache:
    """What a step keeps between builds (docs/pipeline.md, "cache").

    ``paths`` are relative to the workspace (or ``~/...``, the build's HOME);
    ``key`` may hold ``${{ hashFiles('glob', ...) }}`` and ``${{ matrix.X }}``,
    filled in just before the step runs; ``restore_keys`` are prefixes tried,
    newest entry first, when no entry has the exact key. ``skip_on_hit``:
    on an exact hit whose restored files are whole (no dangling link), the
    step's run is skipped and the step passes (a partial hit still runs).
    """

    paths: tuple[str, ...] = attrs.field(
        converter=_str_tuple, validator=attrs.validators.min_len(1)
    )
    key: str = attrs.field(validator=attrs.validators.min_len(1))
    restore_keys: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    skip_on_hit: bool = False


@attrs.frozen(kw_only=True)
class Condition:
    """Whether a step runs, decided just before it would (sauci.core.conditions).

    Set by the workflow front ends: a GitHub job's ``if:``, GitLab's
    ``when: on_failure``/``always``. ``expression`` is GitHub expression
    source (without ``${{ }}``) over the status functions ``success()``,
    ``failure()``, ``always()``, ``cancelled()`` (computed from the steps this
    step needs) and the ``needs`` context; one that calls no status function
    means ``success() && (expression)``. A true condition runs the step even
    when a step it needs failed; a false one ends it "skipped" with
    ``reason`` (or the expression). ``origin`` is "file:line:col", for
    messages. ``needs`` maps each name of the ``needs`` context to the step
    names it stands for (a job's matrix entries); ``contexts`` holds the other
    contexts' values, known when the plan was made (``github``, ``matrix``).
    ``outputs`` maps a name of the ``needs`` context to the workspace-relative
    JSON file (an object of strings) where that job left its outputs, read
    when the condition is decided.
    """

    expression: str = attrs.field(validator=attrs.validators.min_len(1))
    origin: str = ""
    reason: str | None = None
    needs: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_frozen_map)
    contexts: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)
    outputs: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)


@attrs.frozen(kw_only=True)
class Expansion:
    """A step that stands for steps known only once the steps it needs have ended
    (a GitHub job whose matrix comes from another job's outputs): sauci.core.expansion.

    When the step would start, the executor calls ``expand(workspace)`` once
    instead of running it; ``workspace`` is the build's (where the steps it
    needs left their files). It returns the steps to add to the running
    build (each its own step, with ``needs`` among the build's steps), or
    raises ``ValueError`` with a message for the user. ``describe`` says
    where the steps come from, for plans and reasons; at most ``limit``
    steps may be added.
    """

    describe: str = attrs.field(validator=attrs.validators.min_len(1))
    # -> Sequence[Step] (models imports this module, so not named here)
    expand: Callable[[Path], Sequence[Any]] = attrs.field(eq=False, repr=False)
    limit: int = attrs.field(default=MAX_EXPANDED_STEPS, validator=attrs.validators.ge(0))
