"""Review: a NUL in pushed text (a commit message) against PostgreSQL."""

from __future__ import annotations

from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.storage import open_store


def test_a_message_with_nul_is_queued_or_refused_as_a_store_error(postgres_url: str) -> None:
    store = open_store(postgres_url)
    request = BuildRequest(
        repo="/r", ref="refs/heads/main", sha="a" * 40, message="fix\x00bad", author="x"
    )
    try:
        Scheduler(store).enqueue(request)
    except Exception as exc:
        raise AssertionError(f"{type(exc).__module__}.{type(exc).__name__}: {exc}") from exc
