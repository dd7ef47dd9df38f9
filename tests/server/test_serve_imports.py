"""What `sauci serve` imports on its way to "watching" (issue 'Operations that
tell the truth', item 6: a smaller, faster server): without a broker, nothing of
the worker's runtime (sauci.distributed, Celery); with its log going to a pipe,
not structlog (the stdlib formatter writes the same line)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from sauci.cli import build_parser
from sauci.cli._server import cmd_serve
from sauci._logging import configure
build_parser("serve")
configure(level="info", fmt="console")
print(sorted(m for m in ("sauci.distributed", "celery", "structlog", "sqlalchemy")
             if m in sys.modules))
"""


def test_serve_without_a_broker_imports_no_worker_runtime_and_no_structlog_for_a_pipe():
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=60
    )
    assert "[]" == done.stdout.strip(), done.stderr
