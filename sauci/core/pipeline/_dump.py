"""Writing a Pipeline back to ``.sauci.yml`` text that parses to an equal Pipeline.

Steps are written in the mapping form, in order, each with only the keys
that differ from the defaults. A matrix step is written as its expansions:
their names, substituted commands and env are already in each Step, and
``matrix_values`` records Step.matrix (the parser accepts that key only to
read such files; expanding ``matrix`` again could not reproduce hand-written
names or excluded combinations exactly). A step made in Python whose texts
hold a literal ``${{`` is written with ``matrix_values: {}`` too, which makes
the parser keep its texts as they are instead of reading expressions there.
"""

from __future__ import annotations

from typing import Any

import yaml

from sauci.core.models import DEFAULT_SHELL, DEFAULT_TIMEOUT, Pipeline, Step
from sauci.core.pipeline._units import exact_duration, format_size
from sauci.core.resources import Resources
from sauci.core.step_parts import DEFAULT_READY_TIMEOUT, Service

try:
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

__all__ = ["dump_pipeline"]


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Multi-line text as ``|`` blocks (the emitter falls back to quotes when it must)."""


def _represent_str(dumper: yaml.BaseDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_pipeline(pipeline: Pipeline) -> str:
    """YAML text for ``pipeline``; ``parse_pipeline`` turns it back into an equal one."""
    document: dict[str, Any] = {"version": 1}
    if pipeline.env:
        document["env"] = dict(pipeline.env)
    if pipeline.runs_on:
        document["runs_on"] = list(pipeline.runs_on)
    if pipeline.resources is not None:
        document["resources"] = _resources(pipeline.resources)
    if pipeline.schedules:
        document["schedule"] = [{"cron": s.cron, "branch": s.branch} for s in pipeline.schedules]
    document["steps"] = {step.name: _step(step) for step in pipeline.steps}
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 16,  # no folding: long commands stay on one line
    )


def _step(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["run"] = step.run[0] if len(step.run) == 1 else list(step.run)
    if step.needs is not None:  # None stays None: "the step before", which order keeps
        out["needs"] = list(step.needs)
    if step.shell != DEFAULT_SHELL:
        out["shell"] = list(step.shell)
    if step.env:
        out["env"] = dict(step.env)
    if step.timeout != DEFAULT_TIMEOUT:
        out["timeout"] = _duration(step.timeout)
    if step.retries:
        out["retries"] = step.retries
    if step.retry_on:
        out["retry_on"] = list(step.retry_on)
    if step.retry_when:
        out["retry_when"] = list(step.retry_when)
    if step.allow_failure:
        out["allow_failure"] = True
    when: dict[str, list[str]] = {}
    if step.when.branches:
        when["branches"] = list(step.when.branches)
    if step.when.events:
        when["events"] = list(step.when.events)
    if when:
        out["when"] = when
    for key in ("artifacts", "junit", "secrets"):
        if getattr(step, key):
            out[key] = list(getattr(step, key))
    for key in ("workdir", "sandbox", "image", "network"):
        if getattr(step, key) is not None:
            out[key] = getattr(step, key)
    limits: dict[str, Any] = {}
    if step.limits.memory is not None:
        limits["memory"] = format_size(step.limits.memory)
    if step.limits.processes is not None:
        limits["processes"] = step.limits.processes
    if step.limits.cpu is not None:
        limits["cpu"] = float(step.limits.cpu)
    if limits:
        out["limits"] = limits
    if step.weight != 1:
        out["weight"] = step.weight
    if step.resources is not None:
        out["resources"] = _resources(step.resources)
    if step.matrix or _holds_expression_marks(step):
        out["matrix_values"] = dict(step.matrix)
    if step.services:
        out["services"] = [_service(s) for s in step.services]
    if step.cache is not None:
        cache: dict[str, Any] = {"paths": list(step.cache.paths), "key": step.cache.key}
        if step.cache.restore_keys:
            cache["restore_keys"] = list(step.cache.restore_keys)
        if step.cache.skip_on_hit:
            cache["skip_on_hit"] = True
        out["cache"] = cache
    return out


def _resources(cost: Resources) -> dict[str, Any]:
    return {"cpus": float(cost.cpus), "memory": format_size(cost.memory)}


def _service(service: Service) -> dict[str, Any]:
    out: dict[str, Any] = {"name": service.name, "image": service.image}
    if service.command:
        out["command"] = list(service.command)
    if service.env:
        out["env"] = dict(service.env)
    if service.ready is not None:
        out["ready"] = service.ready
    if service.ready_timeout != DEFAULT_READY_TIMEOUT:
        out["ready_timeout"] = _duration(service.ready_timeout)
    return out


def _duration(seconds: float) -> str | float:
    """``1h30m`` when that reads back exactly, else the number of seconds."""
    return exact_duration(seconds) or float(seconds)


def _holds_expression_marks(step: Step) -> bool:
    """Whether a text the parser reads expressions in holds ``${{``."""
    texts = [step.name, *step.run, *step.env.values(), *step.junit, *step.artifacts]
    texts += [step.image or "", str(step.workdir or "")]
    return any("${{" in text for text in texts)
