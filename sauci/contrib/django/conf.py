"""The ``SAUCI`` settings dict: defaults, validation, and the store it names.

``SAUCI`` is merged over :data:`DEFAULTS`
(:mod:`sauci.contrib.django.settings_schema`); :func:`problems` lists what is
wrong with it (the system checks report those with stable ids), and
:func:`config` returns the merged dict, cached until Django's
``setting_changed`` signal says ``SAUCI`` changed (``override_settings`` in
tests). The store is opened once per process from ``SAUCI["STORE"]`` (a URL,
or a Store instance handed in by tests and by ``serve_ui``);
:func:`sauci_settings` gives the management commands SauCI's own
:class:`~sauci.core.config.Settings` for the site.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci.contrib.django.settings_schema import DEFAULTS, READY_CHECK_NAMES, Problem, problems
from sauci.typing import Store

if TYPE_CHECKING:
    from sauci.core.config import Settings

__all__ = [
    "DEFAULTS",
    "READY_CHECK_NAMES",
    "Problem",
    "broker",
    "config",
    "get_store",
    "metrics_token",
    "monitoring",
    "problems",
    "sauci_settings",
    "webhook_secret",
]


class _SiteState:
    """What this process keeps of the site's ``SAUCI`` setting, until it changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config: dict[str, Any] | None = None
        self.store: Store | None = None
        self.store_owned = False  # opened here from a URL (so closed here on a settings change)
        self.monitoring: Any = None
        self.monitoring_owned = False  # installed here (so closed here on a settings change)


_state = _SiteState()


def config() -> dict[str, Any]:
    """``SAUCI`` merged over the defaults; ImproperlyConfigured when it is wrong."""
    current = _state.config
    if current is not None:
        return current
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    raw = getattr(settings, "SAUCI", None)
    found = problems(raw)
    if found:
        first = found[0]
        raise ImproperlyConfigured(f"{first.id}: {first.message} ({first.hint})")
    merged = {**DEFAULTS, **(raw or {})}
    _state.config = merged
    return merged


def get_store() -> Store:
    """The store ``SAUCI["STORE"]`` names, opened once per process (thread-safe)."""
    store = _state.store
    if store is not None:
        return store
    with _state.lock:
        if _state.store is None:
            value = config()["STORE"]
            if value is None or isinstance(value, str):
                from sauci.storage import default_store_url, open_store

                _state.store = open_store(value or default_store_url())
                _state.store_owned = True
            else:
                _state.store = value
                _state.store_owned = False
        return _state.store


def monitoring() -> Any:
    """The process's :class:`sauci.monitoring.Monitoring` for this app.

    ``sauci serve`` installs one before it starts the UI and hands the UI its
    store: that one is reused. Otherwise (a Django site of its own) one is
    installed here for the configured store, on first use.
    """
    found = _state.monitoring
    if found is not None:
        return found
    store = get_store()  # outside the lock: get_store takes it too
    from sauci.monitoring import current, install

    with _state.lock:
        if _state.monitoring is None:
            existing = current()
            if existing is not None and store in (
                existing.store,
                getattr(existing.store, "wrapped", None),
            ):
                _state.monitoring, _state.monitoring_owned = existing, False
            else:
                _state.monitoring = install(
                    store=store,
                    component="django",
                    data_dir=data_dir(),
                    analytics=config()["ANALYTICS"],
                )
                _state.monitoring_owned = True
        return _state.monitoring


def metrics_token() -> str | None:
    """The bearer token of metrics/ from ``SAUCI`` or the environment."""
    return config()["METRICS_TOKEN"] or os.environ.get("SAUCI_METRICS_TOKEN") or None


def data_dir() -> Path:
    """``SAUCI["DATA_DIR"]`` or SauCI's default data directory."""
    value = config()["DATA_DIR"]
    if value:
        return Path(value).expanduser()
    from sauci.core.config import default_data_dir

    return default_data_dir()


def artifacts_dir() -> Path:
    """``SAUCI["ARTIFACTS_DIR"]`` or ``DATA_DIR/artifacts``."""
    value = config()["ARTIFACTS_DIR"]
    return Path(value).expanduser() if value else data_dir() / "artifacts"


def broker() -> str | None:
    """The Celery broker URL from ``SAUCI["BROKER"]`` or ``SAUCI_BROKER``; None: in-process."""
    return config()["BROKER"] or os.environ.get("SAUCI_BROKER") or None


def sauci_settings(**overrides: Any) -> Settings:
    """SauCI's settings for this site, as the management commands run the server or a worker.

    The data and artifacts directories and the broker are the site's (the
    pages read the server's heartbeat and the artifacts there, and readyz/
    checks that broker); the store's URL is ``SAUCI["STORE"]`` when it is
    one (the commands use :func:`get_store`'s store either way). Everything
    else (jobs, lost_timeout, keep_builds, ...) comes from
    ``SAUCI_*`` variables and ``sauci.toml`` as for ``sauci serve``, and
    ``overrides`` (the commands' flags; None means not given) come last.
    """
    from sauci.core.config import load_settings

    cfg = config()
    store = cfg["STORE"]
    values: dict[str, Any] = {
        "data_dir": data_dir(),
        "artifacts_dir": artifacts_dir(),
        "store": store if isinstance(store, str) else "",
        "broker": broker() or "",  # "" (not None): SAUCI decides, not sauci.toml
        # None: not set here; SAUCI_* variables or sauci.toml decide.
        "sandbox": cfg["SANDBOX"],
        "allowed_sandboxes": cfg["ALLOWED_SANDBOXES"],
        "network": cfg["NETWORK"],
        "vm_allow_emulation": cfg["VM_ALLOW_EMULATION"],
        "secrets_file": cfg["SECRETS_FILE"],
        "cache_limit": cfg["CACHE_LIMIT"],
        "artifact_limit": cfg["ARTIFACT_LIMIT"],
        "max_step_processes": cfg["MAX_STEP_PROCESSES"],
    }
    values.update((key, value) for key, value in overrides.items() if value is not None)
    return load_settings(values)


def webhook_secret() -> tuple[str | None, str | None]:
    """(HMAC secret, GitLab token) from ``SAUCI`` or the environment."""
    cfg = config()
    secret = cfg["WEBHOOK_SECRET"] or os.environ.get("SAUCI_WEBHOOK_SECRET") or None
    token = cfg["WEBHOOK_TOKEN"] or os.environ.get("SAUCI_WEBHOOK_TOKEN") or None
    return secret, token


def reset() -> None:
    """Forget the merged settings and the store (closing one opened here)."""
    with _state.lock:
        store, owned = _state.store, _state.store_owned
        watcher, watcher_owned = _state.monitoring, _state.monitoring_owned
        _state.config, _state.store, _state.store_owned = None, None, False
        _state.monitoring, _state.monitoring_owned = None, False
    if watcher is not None and watcher_owned:
        with contextlib.suppress(Exception):
            watcher.close(timeout=1.0)
    if store is not None and owned:
        # A store that fails to close must not break a settings change.
        with contextlib.suppress(Exception):
            store.close()


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "SAUCI":
        reset()
