"""Commands on a local repository: ``run``, ``validate``, ``init``."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci.cli._context import open_cli_store, settings_from, style_from
from sauci.cli._render import Style, duration, table
from sauci.core.models import BuildOutcome, BuildRequest, Status

if TYPE_CHECKING:
    from sauci.core.config import Settings
    from sauci.source.git import Commit, GitSource, Pending
    from sauci.typing import Store

__all__ = ["cmd_init", "cmd_run", "cmd_validate"]

PIPELINE_FILE = ".sauci.yml"


def cmd_run(args: argparse.Namespace) -> int:
    from sauci.cli import EXIT_ERRORED, EXIT_FAILED, EXIT_OK, EXIT_USAGE

    style = style_from(args)
    if getattr(args, "dirty", False):
        print(
            "sauci: note: --dirty is deprecated: sauci run runs the working tree "
            "as it is by default (--commit REF runs a clean commit)",
            file=sys.stderr,
        )
    prepared = _prepare(args)
    if isinstance(prepared, str):
        print(f"sauci: error: {prepared}", file=sys.stderr)
        return EXIT_USAGE
    source, commit, settings, workspace, shown = prepared
    remove_after = not args.keep_workspace  # a workspace made for this run
    removal = None
    try:  # from here on, the workspace is removed whatever happens (Ctrl-C too)
        from sauci.app import build_runner
        from sauci.cli._live import LiveDisplay
        from sauci.cli._sandbox_check import chosen_sandbox, pipeline_capabilities
        from sauci.cli._workflow_files import load_for_run, pick_file, pull_request_params

        capabilities = pipeline_capabilities(args, settings)  # an unknown --sandbox: exit 2
        store = open_cli_store(settings)
        monitoring = None
        try:
            _end_lost_runs(store, settings)
            from sauci.monitoring import install

            # Opt-in usage analytics (off unless SAUCI_ANALYTICS=on); no metrics for one run.
            monitoring = install(
                store=store, component="run", command="run", data_dir=settings.data_dir
            )
            display = LiveDisplay(style, quiet=args.quiet)
            runner = build_runner(
                settings, monitoring.store, observer=display, sandbox=chosen_sandbox(args, settings)
            )
            # The sandbox gets ready (LocalSandbox: its cgroup v1 warm-up, a
            # kernel wait) while the pipeline is read.
            runner.prepare()
            pipeline = load_for_run(
                args,
                workspace,
                pick_file(source.repo, args),
                str(shown),
                settings,
                commit,
                capabilities,
            )
        except BaseException:
            if monitoring is not None:
                monitoring.close()
            store.close()
            raise
        request = BuildRequest(
            repo=str(source.repo),
            ref=commit.ref,
            sha=commit.sha,
            event=args.event,
            params=pull_request_params(args, commit),  # --event pull_request --base BRANCH
            author=commit.author,
            message=commit.message,
        )
        # Ctrl-C, `kill` (SIGTERM) or a closed terminal (SIGHUP): every step's
        # process tree ends (steps have sessions of their own, so none of these
        # reach them), and the build is recorded as cancelled.
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, lambda *_: runner.cancel_all()) for sig in stops}
        try:
            with display.running():
                outcome = runner.run_pipeline(pipeline, workspace, request)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if remove_after:
            removal = _start_removal(source, workspace, commit)  # deleted while we print
        _summary(outcome, style, quiet=args.quiet, store=store)
        monitoring.close()
        store.close()
    finally:
        if removal is not None:
            removal.wait()
        elif remove_after:
            _start_removal(source, workspace, commit).wait()
    status = outcome.build.status
    if status is Status.PASSED or status is Status.SKIPPED:
        return EXIT_OK
    if status is Status.CANCELLED:
        return 130
    return EXIT_ERRORED if status is Status.ERRORED else EXIT_FAILED


def _start_removal(source: GitSource, workspace: Path, commit: Commit) -> Pending[None]:
    """A worktree (also one whose ``git worktree add`` was cut short) goes
    through git's bookkeeping; the plain copy of a repository with no commit
    yet is only deleted."""
    if commit.sha:
        return source.start_remove(workspace)
    from sauci.source.git import Pending

    return Pending(lambda: shutil.rmtree(workspace, ignore_errors=True), lambda: None)


def _prepare(
    args: argparse.Namespace,
) -> tuple[GitSource, Commit, Settings, Path, str] | str:
    """The repository, its commit, the settings, a fresh workspace, and the
    name to show for the pipeline file; or the message of a user error.

    The workspace is a copy of the working tree as it is (a worktree at HEAD
    without a checkout, the files copied over it), or with ``--commit`` a
    clean checkout of that commit. The YAML parser is imported while git works.
    """
    from sauci.exceptions import SourceError
    from sauci.source.git import GitSource

    rev = args.commit or "HEAD"
    try:
        source, commit = GitSource.with_commit(args.path, rev)
    except SourceError:
        found = _without_commit(args.path, args.commit)
        if found is None:
            raise  # git's own error (a damaged repository, say)
        if isinstance(found, str):
            return found
        source, commit = found
    settings = settings_from(args, cwd=source.repo, jobs=args.jobs, fail_fast=args.fail_fast)
    from sauci.cli._workflow_files import pick_file

    file = pick_file(source.repo, args)  # .sauci.yml, else a workflow file
    mine = source.repo / file
    if args.commit:
        shown = f"{args.commit}:{file}"
    else:
        shown = str(mine)
        if not mine.is_file():
            return f"no pipeline file at {mine}; write a starter one with: sauci init {source.repo}"
    from sauci.app.reconcile import remove_lost_workspaces, run_workspace_name

    remove_lost_workspaces(settings.workspaces_dir)  # what a killed `sauci run` left
    workspace = settings.workspaces_dir / run_workspace_name()
    workspace.parent.mkdir(parents=True, exist_ok=True)
    try:  # an error or Ctrl-C: no workspace is left behind
        if args.commit:
            checkout = source.start_checkout(commit.sha, workspace)
            try:
                _import_reader()
            finally:
                checkout.wait()
            if not (workspace / file).exists() and mine.exists():
                _start_removal(source, workspace, commit).wait()
                return (
                    f"no pipeline file {file} in {args.commit} ({commit.sha[:12]}); "
                    f"it is in the working tree: commit it, or run without --commit"
                )
        else:
            from sauci.source.snapshot import snapshot_workspace

            copied = snapshot_workspace(
                source,
                commit.sha or None,
                workspace,
                skip=settings.data_dir,
                meanwhile=_import_reader,  # while git works
            )
            if copied.changed:  # the record says it was not the commit alone
                mark = " (working tree)" if commit.sha else "(working tree, no commit yet)"
                commit = attrs.evolve(commit, message=commit.message + mark)
            if not (workspace / file).exists():
                _start_removal(source, workspace, commit).wait()
                return f"{mine} is ignored by git, so it is not in the copy sauci run runs"
    except BaseException:
        if workspace.exists():
            _start_removal(source, workspace, commit).wait()
        raise
    return source, commit, settings, workspace, shown


def _without_commit(path: str, rev: str | None) -> tuple[GitSource, Commit] | str | None:
    """When ``rev`` (``--commit``, else HEAD) cannot be read: the repository
    and an empty commit if it has none yet and no ``rev`` was asked for
    (``git init``, ``sauci init``, ``sauci run``), else what to tell the user
    (None: nothing the user did, git's error stands)."""
    from sauci.exceptions import SourceError
    from sauci.source.git import GitSource
    from sauci.source.gitcmd import run_git
    from sauci.typing import Commit

    if not os.path.exists(path):
        return f"{path} does not exist"
    try:
        source = GitSource(path)
    except SourceError:
        return (
            f"{os.path.abspath(path)} is not a git repository; sauci run copies the files "
            "git tracks and the untracked ones it does not ignore: run `git init` there "
            "first (nothing needs committing), or copy the directory into one"
        )
    if rev is not None:
        return f"{rev!r} is not a commit in {source.repo}"
    try:
        run_git("rev-parse", "--verify", "--quiet", "HEAD", cwd=source.repo)
    except SourceError:  # no commit yet: the working tree is all there is
        return source, Commit(sha="", ref=source.current_ref(), author="", message="")
    return None


def _import_reader() -> None:
    """Import the YAML parser that reading the pipeline needs while git works
    (``import sauci`` imported the engine: the library exports it)."""
    import yaml  # noqa: F401 - most of the pipeline reader's import time


def _summary(outcome: BuildOutcome, style: Style, *, quiet: bool, store: object) -> None:
    out = sys.stdout
    build = outcome.build
    if quiet:
        # Output was folded: show the end of every failing step's log.
        for step in outcome.steps:
            if step.status in (Status.FAILED, Status.ERRORED) and step.log_path:
                tail = _tail(Path(step.log_path), lines=20)
                if tail:
                    out.write(style.bold(f"── last lines of {step.name} ──") + "\n" + tail + "\n")
    rows = [
        [
            style.status(s.status, allowed=s.allow_failure and s.status is Status.FAILED),
            s.name,
            duration(s.duration),
            s.reason or "",
        ]
        for s in outcome.steps
    ]
    out.write("\n" + table(["STATUS", "STEP", "TIME", "REASON"], rows, style) + "\n")
    took = duration(build.duration)
    out.write(
        f"\nbuild #{build.id} {style.status(build.status)} in {took}"
        + (f" — {build.reason}" if build.reason else "")
        + "\n"
    )
    out.flush()


def _tail(path: Path, *, lines: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read()
    except OSError:
        return ""
    return b"\n".join(data.splitlines()[-lines:]).decode("utf-8", "replace")


def cmd_validate(args: argparse.Namespace) -> int:
    from sauci.cli import EXIT_OK, EXIT_USAGE
    from sauci.core.pipeline import validate_pipeline

    style = style_from(args)
    path = Path(args.path)
    if path.is_dir():
        from sauci.cli._workflow_files import pick_file

        path = path / pick_file(path, args)
    settings = settings_from(args)
    from sauci.cli._workflow_validate import validate_workflow

    shown_plan = validate_workflow(args, path, settings, style)
    if shown_plan is not None:
        return shown_plan
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"sauci: error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    from sauci.cli._sandbox_check import pipeline_capabilities

    capabilities = pipeline_capabilities(args, settings)  # what `sauci run` checks too
    problems = validate_pipeline(
        data, str(path), capabilities=capabilities, network=settings.network
    )
    if problems:
        for problem in problems:
            print(f"{style.paint(str(problem), '31')}")
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}")
        return EXIT_USAGE
    from sauci.core.pipeline import parse_pipeline

    pipeline = parse_pipeline(data, str(path))
    count = len(pipeline.steps)
    steps = f"{count} step" if count == 1 else f"{count} steps"
    print(f"{style.status(Status.PASSED, word=False)} {path} is valid: {steps}")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from sauci.cli import EXIT_OK, EXIT_USAGE
    from sauci.cli._starter import starter_pipeline

    target = Path(args.path) / PIPELINE_FILE
    if target.exists() and not args.force:
        print(f"sauci: error: {target} exists; use --force to overwrite it", file=sys.stderr)
        return EXIT_USAGE
    text, guessed = starter_pipeline(Path(args.path))
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({guessed}); check it with: sauci validate")
    return EXIT_OK


def _end_lost_runs(store: Store, settings: Settings) -> None:
    """End what a killed ``sauci run`` on this data dir left running (sauci.app.reconcile)."""
    from sauci.app.reconcile import end_lost_runs
    from sauci.core.journal import pending_journals, replay_journals

    if pending_journals(settings.data_dir):  # first: a killed run's steps keep their real ends
        replay_journals(store, settings.data_dir)
    for build in end_lost_runs(store):
        print(f"sauci: build {build.id} {build.reason}; ended as errored", file=sys.stderr)
    from sauci.core.undelivered import deliver_pending, pending_notes

    if pending_notes(settings.data_dir):  # a store that was down: its data, sent now
        deliver_pending(store, settings.data_dir)
