"""A workflow file made into a plan: its jobs' matrix entries, each one SauCI step.

Each GitHub job (each matrix entry of it) becomes one SauCI step that runs
the job driver (jobdriver.py) over the job's steps, since a job is GitHub's
unit of a machine: its steps share files, ``GITHUB_ENV`` and ``GITHUB_PATH``,
and a SauCI matrix entry gets a workspace of its own
(sauci.core.entry_workspaces). ``needs`` between jobs become the steps'
``needs``; a job's ``if:`` that reads results becomes the step's
:class:`~sauci.core.step_parts.Condition`.
"""

from __future__ import annotations

from typing import Any

import attrs

from sauci.core.labels import MAX_LABELS
from sauci.core.models import Pipeline, Step
from sauci.core.step_parts import Condition
from sauci.workflows.github._events import (
    dispatch_inputs,
    path_filters,
    pull_types_skip,
    ref_filters,
    triggers,
)
from sauci.workflows.github._job import job_entries, job_env, job_needs
from sauci.workflows.github._job_fields import workflow_concurrency
from sauci.workflows.github._paths import paths_skip
from sauci.workflows.github._reading import LMap, Problems, where
from sauci.workflows.github._refs import ref_skip
from sauci.workflows.github._settings import Entry, Settings

__all__ = ["Entry", "Plan", "Settings", "make_plan"]

_TOP_KEYS = frozenset(
    {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
)


@attrs.frozen(kw_only=True)
class Plan:
    """The jobs of one workflow file as SauCI will run them."""

    file: str
    name: str
    entries: tuple[Entry, ...]
    notes: tuple[str, ...]
    pipeline: Pipeline
    has_path_filters: bool = False  # on.push.paths or paths-ignore: the changed files matter
    concurrency: tuple[str, bool] | None = None  # top-level group, cancel-in-progress

    def text(self) -> str:
        """The plan as ``sauci validate`` prints it (and the golden files hold)."""
        lines = [f"workflow {self.name!r} ({self.file}): {len(self.entries)} job runs"]
        lines += [f"  note: {n}" for n in self.notes]
        for entry in self.entries:
            head = f"- {entry.name}"
            if entry.skip:
                head += f"  [{entry.skip}]"
            elif entry.dynamic:
                head += f"  [{entry.dynamic}]"
            lines.append(head)
            if entry.condition:
                lines.append(f"    if: {entry.condition}  (decided when its needs end)")
            lines += [f"    step: {s}" for s in entry.steps]
            lines += [f"    note: {n}" for n in entry.notes]
        return "\n".join(lines) + "\n"


def make_plan(doc: Any, file: str, settings: Settings, problems: Problems) -> Plan | None:
    """The plan for the parsed workflow ``doc``; None when there are problems."""
    if not isinstance(doc, LMap):
        problems.add((1, 1), "a workflow file must be a mapping with 'on' and 'jobs'")
        return None
    notes: list[str] = []
    for key in doc:
        if key not in _TOP_KEYS:
            problems.add(where(key), f"unknown workflow key {key!r}")
    if "on" not in doc:
        problems.add((doc.line, doc.col), "the workflow has no 'on'")
    when, schedules, trigger_notes = triggers(doc.get("on"), doc.at("on"), problems)
    notes += trigger_notes
    # A pull request is filtered by on.pull_request's filters, anything else by on.push's.
    event = "pull_request" if settings.github.get("event_name") == "pull_request" else "push"
    paths, ignore = path_filters(doc.get("on"), doc.at("on"), problems, event)
    not_started = paths_skip(settings.changed_files, paths, ignore, event)
    if "run-name" in doc:
        notes.append("run-name: not used (a SauCI build is named by its commit)")
    if "permissions" in doc:
        notes.append("permissions: accepted and ignored (SauCI gives a job no GitHub token)")
    jobs = doc.get("jobs")
    if not isinstance(jobs, LMap) or not jobs:
        problems.add(doc.at("jobs"), "'jobs' must be a mapping of job ids to jobs")
        return None
    github = _github_context(doc, file, settings)
    refs = ref_filters(doc.get("on"), doc.at("on"), problems, event)
    action = str(github["event"].get("action") or "synchronize")
    types_skip = pull_types_skip(doc.get("on"), action, problems)  # checked for every build
    if event == "pull_request":  # its base branch, and the step says why (also `sauci run`)
        base = f"refs/heads/{github['base_ref']}"
        not_started = types_skip or not_started or ref_skip(base, refs, event)
    elif github["event_name"] == "push" and (why := ref_skip(github["ref"], refs)):
        # A push the filters refuse: the server skips every step ('when'
        # matches no branch); `sauci run` (which drops 'when') still runs it.
        when = attrs.evolve(when, branches=("!*",))
        notes.append(why.replace("skipped: ", "this push does not start the workflow: ", 1))
    github["event"] = {**github["event"], "inputs": dispatch_inputs(doc.get("on"), settings.inputs)}
    concurrency = None
    if "concurrency" in doc:
        concurrency = workflow_concurrency(
            doc, {"github": github, "inputs": {}, "vars": dict(settings.vars)}, problems
        )
        if concurrency is not None:
            group, cancel = concurrency
            notes.append(
                f"concurrency: group {group!r}: a newer build "
                + ("cancels this one while it runs" if cancel else "waits for this one to end")
            )
    wf_env = job_env(doc.get("env"), {"github": github, "env": {}}, problems)
    selected = _selected(jobs, settings.job, problems)
    order = _order(jobs, problems)
    entries: list[Entry] = []
    steps: list[Step] = []
    names_of: dict[str, list[str]] = {}
    for job_id in order:
        if job_id not in selected:
            continue
        job = jobs[job_id]
        for entry, step in job_entries(
            job_id, job, doc, github, wf_env, names_of, settings, problems
        ):
            if not_started is not None and step is not None:
                entry = attrs.evolve(entry, skip=entry.skip or not_started)
                step = attrs.evolve(
                    step, condition=Condition(expression="false", reason=not_started)
                )
            entries.append(entry)
            if step is not None:
                steps.append(attrs.evolve(step, when=when))
    # A build goes to one worker: one that has every label a job of it asks for.
    runs_on = sorted({label for e in entries if not e.skip for label in e.labels})
    if len(runs_on) > MAX_LABELS:
        problems.add(
            doc.at("jobs"),
            f"runs-on: the jobs ask for {len(runs_on)} worker labels, more than {MAX_LABELS}",
        )
    if runs_on:
        notes.append(
            f"runs-on: under sauci serve with workers, a worker with labels {', '.join(runs_on)}"
        )
    if problems:
        return None
    name = str(doc.get("name") or file)
    pipeline = Pipeline(steps=steps, source=file, schedules=schedules, runs_on=runs_on)
    return Plan(
        file=file,
        name=name,
        entries=tuple(entries),
        notes=tuple(notes),
        pipeline=pipeline,
        has_path_filters=bool(paths or ignore),
        concurrency=concurrency,
    )


def _github_context(doc: LMap, file: str, settings: Settings) -> dict[str, Any]:
    given = dict(settings.github)
    ref = str(given.get("ref") or "refs/heads/main")
    return {
        "event_name": given.get("event_name", "push"),
        "ref": ref,
        "ref_name": _ref_name(ref),
        "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
        "sha": given.get("sha", ""),
        "repository": given.get("repository", ""),
        "repository_owner": str(given.get("repository", "")).split("/")[0],
        "workflow": str(doc.get("name") or file),
        "workspace": str(settings.workspace or ""),
        "run_id": given.get("run_id", "0"),
        "run_number": given.get("run_id", "0"),
        "actor": given.get("actor", ""),
        "server_url": "https://github.com",
        "event": given.get("event", {}),
        "base_ref": given.get("base_ref", ""),  # a pull request's base and head branches
        "head_ref": given.get("head_ref", ""),
    }


def _ref_name(ref: str) -> str:
    if ref.startswith("refs/heads/"):
        return ref.rsplit("/", 1)[-1]
    if ref.startswith(("refs/pull/", "refs/merge-requests/")):
        return ref.split("/", 2)[2]  # GitHub's "42/merge"; SauCI builds "42/head"
    return ref


def _selected(jobs: LMap, job: str | None, problems: Problems) -> set[str]:
    if job is None:
        return set(jobs)
    if job not in jobs:
        problems.add(
            (jobs.line, jobs.col), f"no job {job!r} in this workflow (jobs: {', '.join(jobs)})"
        )
        return set()
    chosen, todo = set(), [job]
    while todo:
        current = todo.pop()
        if current in chosen or current not in jobs:
            continue
        chosen.add(current)
        todo += job_needs(jobs[current])
    return chosen


def _order(jobs: LMap, problems: Problems) -> list[str]:
    """Job ids with each after those it needs (file order otherwise)."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(job_id: str) -> None:
        if job_id in done:
            return
        if job_id in visiting:
            problems.add(jobs.at(job_id), f"the job {job_id!r} needs itself through 'needs'")
            return
        visiting.add(job_id)
        for need in job_needs(jobs[job_id]):
            if need not in jobs:
                job = jobs[job_id]
                problems.add(
                    job.at("needs") if isinstance(job, LMap) else jobs.at(job_id),
                    f"the job {job_id!r} needs {need!r}, which is not a job of this workflow",
                )
                continue
            visit(need)
        visiting.discard(job_id)
        done.append(job_id)

    for job_id in jobs:
        visit(job_id)
    return done
