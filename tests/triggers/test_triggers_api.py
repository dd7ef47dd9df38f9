"""sauci.triggers exports exactly its public API, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import sauci.triggers


def test_all_is_sorted_and_exactly_the_public_names():
    assert sauci.triggers.__all__ == sorted(sauci.triggers.__all__)
    modules = {"cron", "due", "hooks", "poller", "spool", "wake", "webhook"}
    public = {n for n in dir(sauci.triggers) if not n.startswith("_")} - modules
    assert set(sauci.triggers.__all__) == public


def test_importing_triggers_does_not_import_gitpython_or_structlog():
    code = (
        "import sys, sauci.triggers; "
        "print(sorted(m for m in ('git', 'structlog', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" == out.stdout.strip()
