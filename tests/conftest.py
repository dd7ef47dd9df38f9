"""What every test shares."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Helpers every test directory shares (polling.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))

# tests/storage/redis_server.py (its fixtures start a redis-server) is imported by
# several directories' tests and is a plugin of one: have pytest rewrite its
# asserts from the first import on, whichever directory's comes first.
pytest.register_assert_rewrite("redis_server")


@pytest.fixture(autouse=True)
def _logging_settings_do_not_leak() -> Iterator[None]:
    """Tests that call the CLI's main() in-process configure SauCI's logging;
    a configuration not yet applied would otherwise be applied by the next
    test's first warning, replacing structlog's capture_logs there."""
    from sauci import _logging

    saved = (_logging._min_level, _logging._pending)
    yield
    _logging._min_level, _logging._pending = saved
