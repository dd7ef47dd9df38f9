"""How often the server polls each repository that has no hook."""

from __future__ import annotations

from collections.abc import Iterable

from sauci.core.models import Repo

__all__ = ["poll_intervals"]


def poll_intervals(registered: Iterable[Repo], *, default: float) -> dict[str, float]:
    """Seconds between polls, by repository location: the repository's own
    interval (``sauci repo add --poll N``) where it has one, else ``default``
    (the server's ``--poll``)."""
    return {
        repo.location: repo.poll_interval if repo.poll_interval else default for repo in registered
    }
