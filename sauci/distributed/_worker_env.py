"""What a launched worker is configured by, whatever launches it."""

from __future__ import annotations

from sauci.core.config import Settings

__all__ = ["worker_environment"]

# Settings a launched worker inherits from the server, as SAUCI_* variables.
_INHERITED = (
    "broker",
    "labels",
    "slots",
    "heartbeat_interval",
    "sandbox",
    "allowed_sandboxes",
    "network",
    "artifacts_dir",
    "secrets_file",
    "visibility_timeout",
)


def worker_environment(settings: Settings, name: str, idle_exit: float) -> dict[str, str]:
    """The ``SAUCI_*`` variables a launched worker is configured by: the
    server's store, broker and worker settings, its name and idle time."""
    env = {}
    for key in _INHERITED:
        value = getattr(settings, key)
        if value is None or value == "" or value == ():
            continue
        if isinstance(value, tuple | frozenset):
            value = ",".join(sorted(value) if isinstance(value, frozenset) else value)
        env[f"SAUCI_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["SAUCI_STORE"] = settings.store_url
    env["SAUCI_WORKER_NAME"] = name
    env["SAUCI_IDLE_EXIT"] = f"{idle_exit:g}"
    return env
