"""A job's ``container:`` and ``services:`` checked against the sandbox that will run it.

Given the sandbox capabilities of the caller (``sauci validate`` and ``sauci
run`` with their ``--sandbox``, a server with its policy), a job whose
services or container image that sandbox cannot run is a problem at the
key, at plan time, instead of a step that errors when it starts.
"""

from __future__ import annotations

from sauci.core.demands import SandboxCapabilities, demand_message, unmet_demands
from sauci.core.models import Step
from sauci.workflows.github._reading import LMap, Problems

__all__ = ["check_demands"]

_KEYS = {"services": "services", "image": "container"}


def check_demands(
    step: Step,
    job_id: str,
    job: LMap,
    capabilities: SandboxCapabilities | None,
    problems: Problems,
) -> None:
    """Report, once per job, what ``step`` asks that its sandbox cannot give."""
    if capabilities is None:
        return
    sandbox, unmet = unmet_demands(step, capabilities)
    for demand in unmet:
        key = _KEYS.get(demand.key[0], demand.key[0])
        text = demand_message(f"job {job_id!r}", sandbox, demand, capabilities, named=False)
        # A workflow names no sandbox: only the caller's choice changes it.
        text = text.split(", or 'sandbox:")[0]
        line, col = job.at(key) if key in job else (job.line, job.col)
        if not any((p.line, p.column, p.message) == (line, col, text) for p in problems.items):
            problems.add((line, col), text)
