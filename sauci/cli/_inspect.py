"""Commands that read the store: ``builds``, ``show``, ``logs``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from sauci.cli._context import open_cli_store, settings_from, style_from
from sauci.cli._render import Style, age, duration, table
from sauci.cli._safe import printable
from sauci.core.models import Status, StepRun
from sauci.typing import Store

__all__ = ["cmd_builds", "cmd_logs", "cmd_show"]


def _status_arg(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        from sauci.exceptions import ConfigError

        raise ConfigError(
            f"unknown status {value!r}; expected one of {', '.join(s.value for s in Status)}"
        ) from None


def cmd_builds(args: argparse.Namespace) -> int:
    style = style_from(args)
    store = open_cli_store(settings_from(args))
    ref = (
        f"refs/heads/{args.branch}"
        if args.branch and not args.branch.startswith("refs/")
        else args.branch
    )
    builds = store.list_builds(
        repo=args.repo,
        ref=ref,
        status=_status_arg(args.status),
        before_id=args.before,
        limit=args.limit,
    )
    if not builds:
        print("no builds recorded yet; run one with: sauci run")
        return 0
    rows = [
        [
            f"#{b.id}",
            style.status(b.status),
            printable(Path(b.repo).name),
            printable(b.branch or "-"),
            b.sha[:8] or "-",
            b.event,
            duration(b.duration),
            age(b.queued_at),
        ]
        for b in builds
    ]
    print(
        table(
            ["BUILD", "STATUS", "REPO", "BRANCH", "COMMIT", "EVENT", "TIME", "QUEUED"], rows, style
        )
    )
    if len(builds) == args.limit:
        print(style.dim(f"older: sauci builds --before {builds[-1].id}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    style = style_from(args)
    store = open_cli_store(settings_from(args))
    build = store.get_build(args.build)
    steps = store.list_steps(build.id)
    first_line = build.message.splitlines()[0] if build.message else ""
    print(
        f"{style.bold(f'build #{build.id}')}  {style.status(build.status)}  {printable(build.repo)}"
    )
    print(f"  commit   {build.sha[:12] or '-'} {printable(first_line)}")
    print(
        f"  branch   {printable(build.branch or '-')}   event {build.event}   "
        f"author {printable(build.author or '-')}"
    )
    queued = (build.started_at - build.queued_at) if build.started_at else None
    print(
        f"  queued   {age(build.queued_at)} (waited {duration(queued)}), ran {duration(build.duration)}"
    )
    if build.reason:
        print(f"  reason   {printable(build.reason)}")
    rows = [
        [
            style.status(s.status, allowed=s.allow_failure and s.status is Status.FAILED),
            printable(s.name),
            duration(s.duration),
            str(s.attempt) if s.attempt > 1 else "",
            printable(s.reason or ""),
        ]
        for s in steps
    ]
    print()
    print(table(["STATUS", "STEP", "TIME", "TRIES", "REASON"], rows, style))
    from sauci.core.logfile import check_log_file

    for s in steps:  # a log file changed on disk since its step ended
        if problem := check_log_file(store, s).problem:
            print(style.paint(f"  warning: {printable(problem)}", "33"))
    _print_failed_tails(store, build.id, steps, style)
    tests = store.list_test_results(build.id)
    if tests:
        failed = [(step, t) for step, t in tests if t.status in ("failed", "errored")]
        print(f"\ntests: {len(tests)} run, {len(failed)} failed")
        for step, case in failed[:20]:
            print(
                f"  {style.paint('✘', '31')} "
                + printable(f"{case.classname}.{case.name} ({step}): {case.message}")
            )
    artifacts = store.list_artifacts(build.id)
    if artifacts:
        print("\nartifacts:")
        for step, art in artifacts:
            print(printable(f"  {art.path} ({art.size} bytes, {step})"))
    return 0


def _print_failed_tails(store: Store, build_id: int, steps: list[StepRun], style: Style) -> None:
    """The last lines of each failed step's log: what went wrong, without ``sauci logs``."""
    from sauci.core.logtail import step_tail

    for s in steps:
        if s.status not in (Status.FAILED, Status.ERRORED):
            continue
        lines = step_tail(store, s)
        if not lines:
            continue
        shown = "line" if len(lines) == 1 else f"{len(lines)} lines"
        print(f"\n{style.bold(printable(s.name))}: the last {shown} of its log")
        for line in lines:
            print(f"  {printable(line)}")
        print(style.dim(f"  (all of it: sauci logs {build_id} {shlex.quote(printable(s.name))})"))


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _print_log(store: Store, step: StepRun, *, follow: bool, colour: bool) -> None:
    """Print a step's log from the file on disk, or from the store's chunks,
    with only the escapes a terminal may be given (:class:`LogForTerminal`)."""
    from sauci.cli._ansi import LogForTerminal
    from sauci.core.logfile import check_log_file

    shown = LogForTerminal(colour=colour)

    check = check_log_file(store, step)
    if check.problem:  # said on stderr: stdout stays the log
        print(f"sauci: warning: {printable(check.problem)}", file=sys.stderr)
    path = check.path
    offset = 0
    while True:
        if path is not None and path.exists():
            with path.open("rb") as fh:
                fh.seek(offset)
                while chunk := fh.read(1 << 16):
                    _write(shown.feed(chunk))
                    offset += len(chunk)
        else:
            while chunk := store.read_log(step.build_id, step.name, offset, 1 << 20):
                _write(shown.feed(chunk))
                offset += len(chunk)
        if not follow or step.status.done:
            _write(shown.flush())
            return
        time.sleep(0.2)
        step = next(s for s in store.list_steps(step.build_id) if s.name == step.name)
        path = Path(step.log_path) if step.log_path else None


def cmd_logs(args: argparse.Namespace) -> int:
    style = style_from(args)
    store = open_cli_store(settings_from(args))
    build = store.get_build(args.build)
    steps = store.list_steps(build.id)
    if args.step is not None:
        chosen = [s for s in steps if s.name == args.step]
        if not chosen:
            names = ", ".join(s.name for s in steps) or "none"
            print(
                f"sauci: error: build #{build.id} has no step {args.step!r} (steps: {names})",
                file=sys.stderr,
            )
            return 2
        steps = chosen
    for step in steps:
        if len(steps) > 1:
            _write(
                (style.bold(f"── {printable(step.name)} ({step.status.value}) ──") + "\n").encode()
            )
        _print_log(store, step, follow=args.follow, colour=style.enabled)
    return 0
