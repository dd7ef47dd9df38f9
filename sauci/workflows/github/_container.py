"""A job's ``container:`` and ``services:`` as a SauCI step's image and services.

``container: image`` (or ``{image, env}``) runs the job in that image on
the Docker sandbox: the job driver runs inside it with the image's
``python3`` (3.10 or later; a missing one is an error naming the image),
and the sandbox mounts SauCI's expression language read-only beside it.
``services:`` become SauCI's services, named by their ids: a container job
reaches ``postgres`` by that host name, a job on the runner at
``localhost`` on the service's own port (they share one network
namespace, so a port can be mapped only to itself). ``options`` take the
``--health-*`` flags (the service's readiness check); any other option,
``volumes`` and ``credentials`` are errors that name them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

import attrs

from sauci.core.step_parts import Service
from sauci.workflows.github._context import fill_static
from sauci.workflows.github._matrix import matrix_text
from sauci.workflows.github._reading import LMap, Problems, where

__all__ = ["JobContainer", "container_shell", "read_container"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_NOT_SUPPORTED = ("volumes", "credentials", "entrypoint")

# The driver's interpreter in a job container (or, for a job on the runner
# with services, in the Docker sandbox's default image): the image's
# python3, checked first so that an image without one says so (and which
# image) instead of "not found".
_CHECK = (
    'if [ -n "$SAUCI_JOB_IMAGE" ]; then w="the job container image $SAUCI_JOB_IMAGE"; '
    'else w="the sandbox\'s default image (a job on the runner with services runs in it)"; fi; '
    'p=$(command -v python3) || { echo "sauci: $w has no python3; the job needs Python 3.10 '
    'or later in it" >&2; exit 127; }; '
    '"$p" -c "import sys; sys.exit(sys.version_info < (3, 10))" || { echo "sauci: $w has '
    '$($p -V 2>&1); the job needs Python 3.10 or later" >&2; exit 127; }; '
    'exec "$p" -I -c "$0" "$1"'
)


@attrs.frozen
class JobContainer:
    """What a job's ``container`` and ``services`` ask for."""

    image: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)
    services: tuple[Service, ...] = ()
    context: Mapping[str, Any] = attrs.field(factory=dict)  # job.services.<id>

    @property
    def notes(self) -> list[str]:
        """What the plan says of them."""
        out = [f"container: {self.image} (Docker sandbox)"] if self.image else []
        out += [f"service {s.name}: {s.image}" for s in self.services]
        return out


def _image_map(value: Any, at: tuple[int, int]) -> Any:
    """``image`` written alone, as the mapping ``{image: value}`` at ``at``."""
    if not isinstance(value, str):
        return value
    spec = LMap()
    spec.line, spec.col = at
    spec["image"] = value
    spec.positions["image"] = at
    return spec


def _at(spec: Any, key: str, default: tuple[int, int]) -> tuple[int, int]:
    return spec.at(key) if isinstance(spec, LMap) else default


def container_shell(driver: str) -> tuple[str, ...]:
    """The step's shell for a container job: the image's python3 runs ``driver``."""
    return ("sh", "-c", _CHECK, driver)


def read_container(job: LMap, ctx: Mapping[str, Any], problems: Problems) -> JobContainer:
    """The job's container image and env, and its services."""
    image: str | None = None
    env: dict[str, str] = {}
    raw = job.get("container")
    if raw is not None:
        spec = _image_map(raw, job.at("container"))
        if not isinstance(spec, Mapping) or not spec.get("image"):
            problems.add(job.at("container"), "container: an image name or {image, env}")
        else:
            _no_unsupported(spec, "container", job.at("container"), problems, ("ports",))
            image = _text(spec["image"], ctx, spec, "image", job.at("container"), problems)
            env = _env(spec.get("env"), ctx, "container", problems)
            for flag in _options(spec, "container", job.at("container"), problems):
                problems.add(
                    _at(spec, "options", job.at("container")),
                    f"container: option {flag} is not supported",
                )
    services: list[Service] = []
    context: dict[str, Any] = {}
    raw_services = job.get("services")
    if raw_services is not None:
        if not isinstance(raw_services, Mapping):
            problems.add(job.at("services"), "services: a mapping of service ids to containers")
            raw_services = {}
        for sid, spec in raw_services.items():
            at = _at(raw_services, sid, job.at("services"))
            service = _service(str(sid), spec, ctx, image is not None, at, problems)
            if service is not None:
                services.append(service[0])
                context[str(sid)] = {"id": str(sid), "network": "", "ports": service[1]}
    return JobContainer(image=image, env=env, services=tuple(services), context=context)


def _service(
    sid: str,
    spec: Any,
    ctx: Mapping[str, Any],
    in_container: bool,
    at: tuple[int, int],
    problems: Problems,
) -> tuple[Service, dict[str, str]] | None:
    what = f"services.{sid}"
    spec = _image_map(spec, at)
    if not isinstance(spec, Mapping) or not spec.get("image"):
        problems.add(at, f"{what}: an image name or {{image, env, ports, options}}")
        return None
    _no_unsupported(spec, what, at, problems, ())
    image = _text(spec["image"], ctx, spec, "image", at, problems)
    env = _env(spec.get("env"), ctx, what, problems)
    ports: dict[str, str] = {}
    for port in spec.get("ports") or []:
        host, _, inner = str(port).rpartition(":")
        inner = inner.split("/")[0]
        if host and host != inner and not in_container:
            problems.add(
                at,
                f"{what}: port {port}: a service shares the job's network namespace, "
                f"so it is at localhost on its own port ({inner}:{inner})",
            )
        ports[inner] = inner
    ready: str | None = None
    timeout = 30.0
    flags = _options(spec, what, at, problems)
    interval, retries, start = 10.0, 3, 0.0
    i = 0
    while i < len(flags):
        flag, _, value = flags[i].partition("=")
        if not value and i + 1 < len(flags) and flag.startswith("--health-"):
            i, value = i + 1, flags[i + 1]
        i += 1
        if flag == "--health-cmd":
            ready = value
        elif flag in ("--health-interval", "--health-timeout", "--health-start-period"):
            seconds = _seconds(value)
            if seconds is None:
                problems.add(at, f"{what}: options: {flag} {value!r} is not a duration")
            elif flag == "--health-interval":
                interval = seconds
            elif flag == "--health-start-period":
                start = seconds
        elif flag == "--health-retries":
            # ASCII digits: str.isdigit() holds for "²", which int() refuses.
            if re.fullmatch(r"[0-9]{1,6}", value):
                retries = int(value)
            else:
                problems.add(at, f"{what}: options: {flag} {value[:40]!r} is not a count")
        else:
            problems.add(at, f"{what}: option {flags[i - 1]} is not supported")
    if ready is not None:
        timeout = max(timeout, interval * retries + start)
    try:
        service = Service(name=sid, image=image, env=env, ready=ready, ready_timeout=timeout)
    except ValueError as exc:
        problems.add(at, f"{what}: {exc}")
        return None
    return service, ports


def _no_unsupported(
    spec: Mapping[str, Any],
    what: str,
    at: tuple[int, int],
    problems: Problems,
    also: tuple[str, ...],
) -> None:
    for key in (*_NOT_SUPPORTED, *also):
        if key in spec:
            problems.add(_at(spec, key, at), f"{what}: {key} is not supported")


def _options(
    spec: Mapping[str, Any], what: str, at: tuple[int, int], problems: Problems
) -> list[str]:
    options = spec.get("options")
    if options is None:
        return []
    try:
        return shlex.split(str(options))
    except ValueError as exc:
        problems.add(at, f"{what}: options: {exc}")
        return []


def _seconds(text: str) -> float | None:
    total, pos = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match[1]) * _UNIT[match[2]]
        pos = match.end()
    return total if pos == len(text) and text else None


def _text(
    value: Any, ctx: Mapping[str, Any], spec: Any, key: str, at: tuple[int, int], problems: Problems
) -> str:
    place = _at(spec, key, at)
    try:
        text = fill_static(matrix_text(value), ctx, place)
    except Exception as exc:  # the expression language's errors, located
        problems.add(place, str(exc))
        return str(value)
    if "${{" in text:
        problems.add(
            place,
            f"{key}: only values known before the job starts (matrix, github, env, inputs, vars)",
        )
    return text


def _env(value: Any, ctx: Mapping[str, Any], what: str, problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(where(value), f"{what}: env must be a mapping")
        return {}
    return {
        str(k): _text(
            "true" if v is True else "false" if v is False else v,
            ctx,
            value,
            k,
            where(value),
            problems,
        )
        for k, v in value.items()
    }
