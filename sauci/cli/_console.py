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
flushes still run as usual. main() called from Python (tests, scripts)
does none of this.
"""

from __future__ import annotations

import gc
import sys

TYPE_CHECKING = False  # typing is not imported for this: it takes 3 ms
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["console", "imports_done"]

_paused = False


def console() -> NoReturn:
    """Entry point of the ``sauci`` console script."""
    global _paused
    try:
        if gc.isenabled():
            gc.disable()
            _paused = True
        from sauci.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C before a command took it over (while importing)
        print("sauci: interrupted", file=sys.stderr)
        code = 130
    finally:
        imports_done()
        gc.freeze()  # the exit's collection has nothing to find in them
    sys.exit(code)


def imports_done() -> None:
    """The command's modules are imported: freeze what exists and collect
    again from here on (a no-op unless console() paused the collector)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
