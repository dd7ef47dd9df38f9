"""The monitoring tests: redis-server from the storage tests, helpers on the path."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/storage/redis_server.py (a redis-server the tests start) and monitoring_helpers.
sys.path.insert(0, str(Path(__file__).parent.parent / "storage"))
sys.path.insert(0, str(Path(__file__).parent))
