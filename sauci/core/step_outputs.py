"""What a finished step leaves for the server to keep: its JUnit results and its artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sauci.core.paths import artifact_dir

if TYPE_CHECKING:
    from sauci.core.models import Build, Step
    from sauci.typing import Store

__all__ = ["collect_outputs"]


def collect_outputs(
    store: Store,
    artifacts_dir: Path,
    build: Build,
    step: Step,
    workspace: Path,
    *,
    secrets: Sequence[str] = (),
    artifact_limit: int | None = None,
) -> str:
    """Record the step's JUnit results (``secrets`` masked) and keep its
    artifacts, at most ``artifact_limit`` bytes of them (None: the default,
    :data:`~sauci.core.artifacts.DEFAULT_ARTIFACT_LIMIT`). Returns what the
    step's reason should say of the files not kept ("" when none)."""
    if step.junit:
        from sauci.core.junit import collect_junit

        cases = collect_junit(workspace, step.junit, secrets=secrets)
        if cases:
            store.add_test_results(build.id, step.name, cases)
    if not step.artifacts:
        return ""
    from sauci.core.artifacts import DEFAULT_ARTIFACT_LIMIT, collect_artifacts
    from sauci.core.logbudget import format_size

    dest = artifact_dir(artifacts_dir, build.repo, build.id, step.name, uuid=build.uuid)
    limit = DEFAULT_ARTIFACT_LIMIT if artifact_limit is None else artifact_limit
    dropped: list[str] = []
    misnamed: list[str] = []
    kept = collect_artifacts(
        workspace, step.artifacts, dest, limit=limit, dropped=dropped, misnamed=misnamed
    )
    if kept:
        store.add_artifacts(build.id, step.name, kept)
    notes = []
    if dropped:
        notes.append(
            f"artifact limit: {len(dropped)} file(s) not kept ({dropped[0]} first), "
            f"past the {format_size(limit)} a step's artifacts may hold"
        )
    if misnamed:
        notes.append(
            f"artifacts: {len(misnamed)} file(s) not kept: a name that is not UTF-8 "
            f"({misnamed[0]} first)"
        )
    return "; ".join(notes)
