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
    """Tests that call the CLI's main() in-process configure SauCI's logging
    (a level and a handler on the "sauci" logger); the next test starts
    without them."""
    import logging

    logger = logging.getLogger("sauci")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]
