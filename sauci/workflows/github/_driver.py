"""The job driver as a SauCI step runs it: its source (pythons.py, then jobdriver.py) and
the interpreter that starts it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["DRIVER", "driver_python"]


def _driver_source() -> str:
    """pythons.py, artifactfiles.py, runnerfiles.py then jobdriver.py, as one program for ``python -c``."""
    here = Path(__file__).parent
    names = ("pythons.py", "artifactfiles.py", "runnerfiles.py", "jobdriver.py")
    parts = [(here / name).read_text(encoding="utf-8") for name in names]
    tail = [part.replace("from __future__ import annotations\n", "") for part in parts[1:]]
    return "\n".join([parts[0], *tail])


DRIVER = _driver_source()


@functools.cache
def driver_python() -> str:
    """The interpreter that runs the job driver: the system's Python 3.11 or later with
    attrs where there is one (a sandbox sees /usr, not a user's pyenv; a pyenv shim
    costs 0.2 s a start), else ``python3`` from the step's PATH."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            done = subprocess.run(
                # attrs: sauci.exceptions, which the expression language raises, needs it.
                [candidate, "-I", "-c", "import sys, attrs; sys.exit(sys.version_info < (3, 11))"],
                capture_output=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return "python3"
