"""Starting a child process with Ctrl-C as a terminal gives it."""

from __future__ import annotations

import signal


def default_ctrl_c() -> None:
    """``preexec_fn``: SIGINT at its default disposition in the child.

    A shell's background job (``cmd &``, ``nohup``) starts with SIGINT
    ignored, the child inherits that, and Python then installs no
    KeyboardInterrupt handler: a test that sends SIGINT would see nothing
    happen when the test suite itself was started that way.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
