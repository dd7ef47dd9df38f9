"""The outputs of a matrix job, passed on as GitHub does: the entry that ends last wins.

A matrix job's entries run in copies of the workspace, so the outputs file
an entry's job driver writes would stay in its copy. Each entry also
writes ``.sauci-gha/outputs/<job>.entry.json`` (its outputs and when it
ended), kept as one of its artifacts; a job that needs a matrix job with
``outputs`` gets its ancestors' artifacts copied in
(``Step.download_artifacts``) and its driver takes the outputs of the
entry that ended last. A job's ``if:`` does not see them (it is decided
before those files are copied in): an empty ``needs.<job>.outputs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from sauci.core.artifact_inputs import INBOX
from sauci.core.paths import safe_name

__all__ = ["MatrixOutputs", "driver_safe_name", "matrix_outputs"]


@attrs.frozen
class MatrixOutputs:
    """What a job's step adds for matrix outputs: spec keys, artifacts, inbox."""

    spec: Mapping[str, Any] = attrs.field(factory=dict)
    artifacts: tuple[str, ...] = ()
    download: bool = False


def driver_safe_name(name: str) -> str:
    """``name`` as the job driver writes it in a path (jobdriver._safe)."""
    return re.sub(r"[^\w.-]+", "_", name)[:80] or "_"


def _is_matrix(job: Any) -> bool:
    strategy = job.get("strategy") if isinstance(job, Mapping) else None
    return isinstance(strategy, Mapping) and strategy.get("matrix") is not None


def _reads_needs(job: Mapping[str, Any]) -> bool:
    return bool(re.search(r"\bneeds\.", json.dumps(job["strategy"]["matrix"])))


def matrix_outputs(
    job_id: str,
    job: Mapping[str, Any],
    name: str,
    in_matrix: bool,
    needs: Sequence[str],
    names_of: Mapping[str, Sequence[str]],
    jobs: Any,
) -> MatrixOutputs:
    """For the entry ``name`` of ``job_id`` (``in_matrix``: one of a matrix)."""
    spec: dict[str, Any] = {}
    artifacts: tuple[str, ...] = ()
    if in_matrix and job.get("outputs"):
        spec["matrix_entry"] = True
        artifacts = (f".sauci-gha/outputs/{driver_safe_name(job_id)}.entry.json",)
    entries: dict[str, list[str]] = {}
    for need in needs:
        other = jobs.get(need) if isinstance(jobs, Mapping) else None
        if isinstance(other, Mapping) and other.get("outputs") and _is_matrix(other):
            # A matrix from the outputs of the jobs it needs (_matrix_dynamic):
            # its entries' names are known only at run time, so a pattern.
            known = ("*",) if _reads_needs(other) else names_of.get(need, ())
            entries[need] = [
                f"{INBOX}/{safe_name(name)}/{entry if entry == '*' else safe_name(entry)}"
                f"/.sauci-gha/outputs/{driver_safe_name(need)}.entry.json"
                for entry in known
            ]
    if entries:
        spec["need_entries"] = entries
    return MatrixOutputs(spec=spec, artifacts=artifacts, download=bool(entries))
