"""The jobs of a merged ``.gitlab-ci.yml``: which keys are jobs, ``default:``
and the old top-level defaults applied, and each job's ``parallel`` entries.
"""

from __future__ import annotations

import itertools
from typing import Any

from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._variables import bad_name
from sauci.workflows.gitlab._yaml import Map, Seq

__all__ = ["GLOBAL_KEYS", "JOB_KEYS", "UNSUPPORTED_JOB_KEYS", "apply_defaults", "entries", "split"]

GLOBAL_KEYS = ("default", "include", "stages", "variables", "workflow")
DEFAULT_KEYS = (
    "after_script", "artifacts", "before_script", "cache", "image", "interruptible",
    "retry", "services", "tags", "timeout",
)  # fmt: skip
JOB_KEYS = frozenset({
    *DEFAULT_KEYS, "allow_failure", "coverage", "dependencies", "except", "extends",
    "inherit", "needs", "only", "parallel", "rules", "script", "stage", "variables", "when",
})  # fmt: skip
# Keys that ask for something SauCI does not do: each is a problem naming it.
UNSUPPORTED_JOB_KEYS = {
    "trigger": "downstream pipelines", "environment": "deployments to environments",
    "release": "releases", "resource_group": "resource groups", "secrets": "external secrets",
    "id_tokens": "ID tokens", "pages": "GitLab Pages", "start_in": "delayed jobs",
    "hooks": "job hooks", "identity": "cloud identities", "manual_confirmation": "confirmations",
    "dast_configuration": "DAST", "publish": "GitLab Pages",
}  # fmt: skip
MAX_ENTRIES = 200  # GitLab's limit for parallel jobs


def split(config: Map, report: Report) -> dict[str, Map]:
    """The job mappings (hidden ones included) by name."""
    jobs: dict[str, Map] = {}
    for key, value in config.items():
        if key in GLOBAL_KEYS:
            continue
        if key in ("image", "services", "cache", "before_script", "after_script"):
            continue  # the old way of writing default:
        if key == "pages":
            report(config.where(key), "the pages job publishes to GitLab Pages; not supported")
            continue
        if key == "types":
            report(config.where(key), "types: is the old name of stages:; write stages:")
            continue
        if not isinstance(value, Map):
            if not key.startswith("."):
                report(config.where(key), f"{key}: a job is a mapping with a script")
            continue
        jobs[key] = value
    return jobs


def apply_defaults(name: str, job: Map, config: Map, report: Report) -> Map:
    """``job`` with the ``default:`` keys it inherits and does not set."""
    default = config.get("default")
    defaults = Map(config.pos)
    for key in ("image", "services", "cache", "before_script", "after_script"):
        if key in config:
            defaults.put(key, config[key], config.where(key))
    if isinstance(default, Map):
        for key, value in default.items():
            if key not in DEFAULT_KEYS:
                report(default.where(key), f"default: {key} is not supported")
                continue
            defaults.put(key, value, default.where(key))
    elif default is not None:
        report(config.where("default"), "default: expected a mapping")
    inherit = job.get("inherit", Map(job.pos))
    wanted = inherit.get("default", True) if isinstance(inherit, Map) else True
    if not isinstance(inherit, Map) or not all(
        isinstance(v, bool) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        for v in inherit.values()
    ):
        report(
            job.where("inherit"), "inherit: expected {default: true/false/[keys], variables: ...}"
        )
        wanted = True
    out = Map(job.pos)
    for key, value in defaults.items():
        if wanted is True or (isinstance(wanted, list) and key in wanted):
            out.put(key, value, defaults.where(key))
    for key, value in job.items():
        out.put(key, value, job.where(key))
    return out


def entries(name: str, job: Map, report: Report) -> list[tuple[str, dict[str, str]]]:
    """Each instance of the job: its name and the variables it adds."""
    if "parallel" not in job:
        return [(name, {})]
    value, where = job["parallel"], job.where("parallel")
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_ENTRIES:
            report(where, f"parallel: expected 1 to {MAX_ENTRIES}")
            return [(name, {})]
        return [
            (f"{name} {i}/{value}", {"CI_NODE_INDEX": str(i), "CI_NODE_TOTAL": str(value)})
            for i in range(1, value + 1)
        ]
    if not isinstance(value, Map) or not isinstance(value.get("matrix"), Seq) or len(value) != 1:
        report(where, "parallel: expected a number or {matrix: [...]}")
        return [(name, {})]
    combos: list[dict[str, str]] = []
    matrix = value["matrix"]
    for index, row in enumerate(matrix):
        if not isinstance(row, Map) or not row:
            report(matrix.where(index), "parallel: matrix: each entry is a mapping of variables")
            continue
        axes = []
        for key, values in row.items():
            if (problem := bad_name(key)) is not None:
                report(row.where(key), f"parallel: matrix: {problem}")
                return [(name, {})]
            items = values if isinstance(values, list) else [values]
            if not items or not all(isinstance(v, str | int | float) for v in items):
                report(
                    row.where(key), f"parallel: matrix: {key}: expected a value or a list of values"
                )
                return [(name, {})]
            axes.append([(key, _text(v)) for v in items])
        combos.extend(dict(c) for c in itertools.product(*axes))
    if len(combos) > MAX_ENTRIES:
        report(where, f"parallel: matrix makes {len(combos)} jobs, more than {MAX_ENTRIES}")
        return [(name, {})]
    total = str(len(combos))
    return [
        (
            f"{name}: [{', '.join(combo.values())}]",
            {**combo, "CI_NODE_INDEX": str(i), "CI_NODE_TOTAL": total},
        )
        for i, combo in enumerate(combos, 1)
    ]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
