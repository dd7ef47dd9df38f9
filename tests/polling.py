"""Waiting in tests: poll until something is true, fail naming what never came.

A deadline is where a test gives up, never a timing assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

DEADLINE = 60.0  # seconds


def wait_for(
    predicate: Callable[[], Any], what: str = "the condition", timeout: float = DEADLINE
) -> Any:
    """Poll ``predicate`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
