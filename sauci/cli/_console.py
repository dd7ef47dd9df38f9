"""The ``sauci`` executable (and ``python -m sauci``): main() in a process
that starts and ends quickly.

Two costs of a short-lived CPython process are not SauCI's work:

- while modules import, the cyclic garbage collector runs every few hundred
  allocations and finds nothing (classes and functions live until exit);
- at exit, the interpreter collects every object once more before it tears
  the modules down: 10-15 ms for SauCI's engine, longer than the build of a
  one-step pipeline.

So the collector is paused while the command's modules import, then what
exists at that point is frozen (``gc.freeze``: never scanned again, as the
gc docs suggest for a process's start-up) and collection resumes; at exit
everything is frozen once more. Exit handlers, thread joins and buffer
flushes still run as usual. Ctrl-C, SIGTERM and SIGHUP are held except
where SauCI expects them (see :func:`hold_signals`). main() called from
Python (tests, scripts) does none of this.
"""

from __future__ import annotations

import contextlib
import gc
import sys

TYPE_CHECKING = False  # typing is not imported for this: it takes 3 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, NoReturn

__all__ = ["console", "hold_signals", "imports_done", "release_signals", "signals_live"]

_paused = False
_managed = False  # console() holds the stop signals outside the safe places
_held: Any = None  # the signal mask to put back while they are held


def console() -> NoReturn:
    """Entry point of the ``sauci`` console script."""
    global _paused, _managed
    _managed = True
    hold_signals()
    try:
        try:
            if gc.isenabled():
                gc.disable()
                _paused = True
            from sauci.cli import main

            code = main()
        finally:
            imports_done()
            release_signals()  # one held until now takes effect here at the latest
    except KeyboardInterrupt:  # before a command took it over, or as it ended
        print("sauci: interrupted", file=sys.stderr)
        code = 130
    gc.freeze()  # the exit's collection has nothing to find in what exists
    sys.exit(code)


def imports_done() -> None:
    """The command's modules are imported: freeze what exists and collect
    again from here on (a no-op unless console() paused the collector)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def hold_signals() -> None:
    """Hold (block) Ctrl-C, SIGTERM and SIGHUP until :func:`release_signals`.

    Python raises a signal's exception at whatever bytecode runs next, and in
    the import machinery or half-way through a clean-up that can leave the
    import lock held (a step thread importing a module then waits forever:
    seen once in 40 runs when sending SIGTERM to `sauci run` during its
    start) or a worktree half removed. Held, a signal is raised where SauCI
    expects it instead. Processes started meanwhile (git) inherit the mask
    and finish their work. A no-op unless console() manages the signals.
    """
    global _held
    if _managed and _held is None:
        import signal

        _held = signal.pthread_sigmask(
            signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        )


def release_signals() -> None:
    """Let held signals through; one that came meanwhile takes effect now."""
    global _held
    if _held is not None:
        import signal

        previous, _held = _held, None
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def signals_live() -> Iterator[None]:
    """Signals act at once inside the block (``sauci run``'s build: its handlers
    only ask for a cancel), and are held again after it if they were before
    (``sauci demo --serve`` runs its build with them let through already)."""
    was_held = _held is not None
    release_signals()
    try:
        yield
    finally:
        if was_held:
            hold_signals()
