"""Commands on a local repository: ``run``, ``validate``, ``init``."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sauci.cli._context import open_cli_store, settings_from, style_from
from sauci.cli._render import Style, duration, table
from sauci.core.models import BuildOutcome, BuildRequest, Status

if TYPE_CHECKING:
    from sauci.core.config import Settings
    from sauci.source.git import Commit, GitSource

__all__ = ["cmd_init", "cmd_run", "cmd_validate"]

PIPELINE_FILE = ".sauci.yml"


def cmd_run(args: argparse.Namespace) -> int:
    from sauci.cli import EXIT_ERRORED, EXIT_FAILED, EXIT_OK

    style = style_from(args)
    source, commit, settings, workspace = _workspace_at_head(args)
    remove_after = not args.dirty and not args.keep_workspace  # a workspace made for this run
    removal = None
    try:  # from here on, the workspace is removed whatever happens (Ctrl-C too)
        from sauci.app import build_runner
        from sauci.cli._live import LiveDisplay
        from sauci.core.pipeline import load_pipeline

        pipeline_path = workspace / (args.file or PIPELINE_FILE)
        pipeline = load_pipeline(pipeline_path, max_timeout=settings.max_timeout)
        store = open_cli_store(settings)
        from sauci.monitoring import install

        # Opt-in usage analytics (off unless SAUCI_ANALYTICS=on); no metrics for one run.
        monitoring = install(
            store=store, component="run", command="run", data_dir=settings.data_dir
        )
        display = LiveDisplay(style, quiet=args.quiet)
        runner = build_runner(settings, monitoring.store, observer=display)
        request = BuildRequest(
            repo=str(source.repo),
            ref=commit.ref,
            sha=commit.sha,
            event=args.event,
            author=commit.author,
            message=commit.message + (" (dirty working tree)" if args.dirty else ""),
        )
        # Ctrl-C, `kill` (SIGTERM) or a closed terminal (SIGHUP): every step's
        # process tree ends (steps have sessions of their own, so none of these
        # reach them), and the build is recorded as cancelled.
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, lambda *_: runner.cancel_all()) for sig in stops}
        try:
            outcome = runner.run_pipeline(pipeline, workspace, request)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if remove_after:
            removal = source.start_remove(workspace)  # git deletes while we print
        _summary(outcome, style, quiet=args.quiet, store=store)
        monitoring.close()
        store.close()
    finally:
        if removal is not None:
            removal.wait()
        elif remove_after:
            source.remove(workspace)
    status = outcome.build.status
    if status is Status.PASSED or status is Status.SKIPPED:
        return EXIT_OK
    if status is Status.CANCELLED:
        return 130
    return EXIT_ERRORED if status is Status.ERRORED else EXIT_FAILED


def _workspace_at_head(args: argparse.Namespace) -> tuple[GitSource, Commit, Settings, Path]:
    """The repository, HEAD's commit, the settings, and a fresh workspace
    checked out at HEAD (the repository itself with --dirty).

    The YAML parser is imported while ``git worktree add`` works on the other core.
    """
    from sauci.source.git import GitSource

    source, commit = GitSource.with_commit(args.path, "HEAD")
    settings = settings_from(args, cwd=source.repo, jobs=args.jobs, fail_fast=args.fail_fast)
    if args.dirty:
        return source, commit, settings, source.repo
    workspace = settings.workspaces_dir / f"run-{int(time.time() * 1000)}-{id(args) & 0xFFFF:x}"
    try:  # an error or Ctrl-C: no workspace is left behind
        checkout = source.start_checkout(commit.sha, workspace)
        try:
            _import_reader()
        finally:
            checkout.wait()
    except BaseException:
        if workspace.exists():
            source.remove(workspace)
        raise
    return source, commit, settings, workspace


def _import_reader() -> None:
    """Import the YAML parser that reading the pipeline needs while git checks out
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
        path = path / PIPELINE_FILE
    settings = settings_from(args)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"sauci: error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    problems = validate_pipeline(data, str(path), network=settings.network)
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
