"""Steps added to a running build: a step with an :class:`~sauci.core.step_parts.Expansion`.

Some steps are known only once others have ended (a GitHub job whose matrix
is built with ``fromJSON`` from another job's outputs). A front end puts a
placeholder step in the pipeline that carries an ``Expansion``; when the
executor would start it (every step it needs ended and let it run, its
condition true), it calls :func:`expand_step` instead. The steps returned
are recorded in the store as steps of the build (queued, after the steps
already there) and scheduled like any other: each has its own record, log,
reports, workspace (a matrix entry's) and status. The placeholder ends
"passed" with the names of the steps it added in its reason, and every step
that needed it now needs them instead (:func:`rewire`), so later steps
wait for all of them. An expansion that fails (the front end's
``ValueError``, more than ``limit`` steps, a name already taken, an
unknown need) ends the placeholder "failed" with the reason; the steps
that needed it are skipped as after any failed step.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from sauci._logging import get_logger
from sauci.core.models import Build, Status, Step, StepRun

if TYPE_CHECKING:
    from sauci.typing import Store

__all__ = ["Recorder", "expand_into", "expand_step", "rewire"]

log = get_logger(__name__)

_MAX_REASON = 1000  # characters of the front end's message kept in a step's reason


class Recorder(Protocol):
    """What records the steps (sauci.core.executor.Executor has it)."""

    store: Store

    def log_path(self, build: Build, step: str) -> Path: ...

    def _finish(self, build: Build, run: StepRun, **changes: object) -> StepRun: ...


def expand_into(
    recorder: Recorder,
    build: Build,
    run: StepRun,
    steps: dict[str, Step],
    deps: dict[str, tuple[str, ...]],
    runs: dict[str, StepRun],
    workspace: Path,
) -> StepRun:
    """Expand the step of ``run`` into the executor's state (``steps``, ``deps``,
    ``runs``, changed in place), recording the added steps queued and the steps
    rewired to them; the placeholder's final record."""
    store, finish, log_path = recorder.store, recorder._finish, recorder.log_path
    started = time.time()
    try:
        added, why = expand_step(steps[run.name], workspace, deps[run.name], set(steps))
    except Exception as exc:  # a bug in the front end: this step errors, not the build
        log.error("step_expansion_crashed", build=build.id, step=run.name, exc_info=exc)
        reason = f"SauCI failed while adding the step's steps: {exc}"
        return finish(build, run, status=Status.ERRORED, reason=reason, started_at=started)
    if why is not None:
        log.warning("step_expansion_failed", build=build.id, step=run.name, reason=why)
        return finish(build, run, status=Status.FAILED, reason=why, started_at=started)
    for new in added:
        steps[new.name] = new
        deps[new.name] = tuple(new.needs or ())
        runs[new.name] = store.save_step(
            StepRun(
                build_id=build.id,
                name=new.name,
                position=len(runs),
                allow_failure=new.allow_failure,
                needs=deps[new.name],
                log_path=str(log_path(build, new.name)),
            )
        )
    for name in rewire(run.name, tuple(s.name for s in added), steps, deps):
        runs[name] = store.save_step(attrs.evolve(runs[name], needs=deps[name]))
    names = ", ".join(repr(s.name) for s in added[:5]) + (", ..." if len(added) > 5 else "")
    log.info("step_expanded", build=build.id, step=run.name, steps=len(added))
    return finish(
        build,
        run,
        status=Status.PASSED,
        reason=f"added {len(added)} steps: {names}",
        started_at=started,
    )


def expand_step(
    step: Step, workspace: Path, needs: tuple[str, ...], taken: Collection[str]
) -> tuple[list[Step], str | None]:
    """The steps ``step`` adds (its needs ``needs``; ``taken``: the build's step names),
    or no steps and the reason it fails."""
    expansion = step.expansion
    if expansion is None:
        return [], None
    try:
        added = list(expansion.expand(workspace))
    except (ValueError, OSError) as exc:  # the front end's message for the user
        said = str(exc) if len(str(exc)) <= _MAX_REASON else str(exc)[:_MAX_REASON] + "..."
        return [], f"{expansion.describe}: {said}"
    if len(added) > expansion.limit:
        return [], (
            f"{expansion.describe}: {len(added)} steps, more than the limit of {expansion.limit}"
        )
    if not added:
        return [], f"{expansion.describe}: no steps"
    names: set[str] = set()
    out: list[Step] = []
    for new in added:
        if new.name in names or new.name in taken:
            return [], f"{expansion.describe}: the step name {new.name!r} is already used"
        if new.expansion is not None:
            return [], f"{expansion.describe}: an added step cannot expand again"
        unknown = [n for n in (new.needs or ()) if n not in taken]
        if unknown:
            return [], f"{expansion.describe}: {new.name!r} needs unknown step {unknown[0]!r}"
        names.add(new.name)
        out.append(new if new.needs is not None else attrs.evolve(new, needs=needs))
    return out, None


def rewire(
    placeholder: str,
    added: tuple[str, ...],
    steps: dict[str, Step],
    deps: dict[str, tuple[str, ...]],
) -> list[str]:
    """Make every step that needed ``placeholder`` need ``added`` instead (its
    ``deps`` and its condition's ``needs`` context); the names changed."""
    changed = []
    for name, needed in list(deps.items()):
        if placeholder not in needed or name in added:
            continue
        deps[name] = _replace(needed, placeholder, added)
        step = steps[name]
        if step.condition is not None:
            rewired: Mapping[str, tuple[str, ...]] = {
                key: _replace(names, placeholder, added)
                for key, names in step.condition.needs.items()
            }
            step = attrs.evolve(step, condition=attrs.evolve(step.condition, needs=rewired))
        steps[name] = attrs.evolve(step, needs=deps[name])
        changed.append(name)
    return changed


def _replace(names: tuple[str, ...], old: str, new: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        out.extend(new if name == old else (name,))
    return tuple(dict.fromkeys(out))
