"""What the ``SAUCI`` settings dict may hold: :data:`DEFAULTS`, a check per
key, and :func:`problems`, the list the system checks report with stable ids.
:mod:`sauci.contrib.django.conf` merges and caches it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

__all__ = ["DEFAULTS", "READY_CHECK_NAMES", "Problem", "problems"]

# What readyz/ may check (sauci.monitoring.health.ALL_CHECKS, not imported:
# reading the settings must stay cheap); a test keeps the two equal.
READY_CHECK_NAMES = ("store", "scheduler", "queue", "broker")

DEFAULTS: dict[str, Any] = {
    # Store URL (sqlite:///..., postgresql://...) or a Store instance;
    # None: SauCI's embedded default (an SQLite file in the data directory).
    "STORE": None,
    # Where `sauci serve` keeps logs and artifacts; None: SauCI's default data dir.
    "DATA_DIR": None,
    # Where artifacts are kept (a directory shared with workers on other
    # hosts); None: DATA_DIR/artifacts.
    "ARTIFACTS_DIR": None,
    # Celery broker URL (redis://host:6379/0): manage.py sauci_serve sends
    # builds to `sauci worker`s through it, and readyz/ checks it. None: the
    # environment variable SAUCI_BROKER, else builds run in-process.
    "BROKER": None,
    # Anonymous users may view builds (actions always need a login and a permission).
    "PUBLIC": False,
    # Status badges are public (READMEs embed them) unless this is False.
    "PUBLIC_BADGES": True,
    # HMAC secret (GitHub, Gitea) / token (GitLab) of the webhook receiver;
    # None: the environment variables SAUCI_WEBHOOK_SECRET / SAUCI_WEBHOOK_TOKEN.
    "WEBHOOK_SECRET": None,
    "WEBHOOK_TOKEN": None,
    "WEBHOOK_MAX_BODY": 1024 * 1024,
    # Builds per page of the build list.
    "PAGE_SIZE": 50,
    # Bytes of a log shown first (its tail) and fetched per "load earlier".
    "LOG_TAIL_BYTES": 256 * 1024,
    # How long one live-follow (server-sent events) response lasts before the
    # browser reconnects: bounds how long a server thread is held.
    "LOG_STREAM_SECONDS": 25.0,
    # Bytes of a log one search request scans at most (it then returns a
    # cursor to continue from), so a search of a huge log holds no thread long.
    "LOG_SEARCH_BYTES": 64 * 1024 * 1024,
    # How many recent builds the analytics and test history look at.
    "HISTORY_BUILDS": 50,
    # Seconds between the pages' refreshes while builds are queued or running.
    "REFRESH_SECONDS": 2.0,
    "TITLE": "SauCI",
    # Links to commits, branches and compare views on the forge, per repository
    # location (or fnmatch pattern): "github:https://github.com/OWNER/NAME",
    # "gitlab:URL", "gitea:URL", or {"commit": ..., "branch": ..., "compare": ...}
    # templates with {url}, {name}, {sha}, {old_sha}, {branch}.
    "FORGES": {},
    # Serve Prometheus metrics at metrics/ (prometheus_client, the "metrics" extra).
    "METRICS": True,
    # Bearer token Prometheus sends to metrics/ (viewers may read it logged in);
    # None: the environment variable SAUCI_METRICS_TOKEN.
    "METRICS_TOKEN": None,
    # Record page views and actions (hashed ids) through AnalyticsMiddleware,
    # in the store (the usage page) and, with SAUCI_MIXPANEL_TOKEN, Mixpanel.
    # Opt-in: None follows the environment (SAUCI_ANALYTICS=on, or a Mixpanel
    # token); True or False decides here.
    "ANALYTICS": None,
    # What readyz/ checks: "store", "scheduler" (server.json heartbeat), "queue",
    # "broker" (only when a broker is set).
    "READY_CHECKS": READY_CHECK_NAMES,
    # readyz/ fails when the server's heartbeat is older than this.
    "HEARTBEAT_STALE_SECONDS": 30.0,
    # readyz/ fails when builds waited this long and none started or ended meanwhile.
    "QUEUE_STUCK_SECONDS": 1800.0,
    # Where anonymous visitors are sent to log in: a URL or URL name (a site's
    # own login or single sign-on); None: the app's own page, sauci:login.
    "LOGIN_URL": None,
    # The server's policy for pushed code (docs/serve.md#sandbox), as
    # `sauci serve --sandbox / --allow-sandbox / --secrets-file` sets it for
    # `manage.py sauci_serve` and `sauci_worker`. None: SAUCI_* variables,
    # sauci.toml, else the namespace sandbox alone and no secrets file.
    "SANDBOX": None,
    "ALLOWED_SANDBOXES": None,
    # False: steps run without network, and `network: true` in a pipeline is
    # refused (`sauci serve --no-network`). None: SAUCI_NETWORK, sauci.toml, else on.
    "NETWORK": None,
    # The vm sandbox may boot under emulation where KVM cannot run a guest.
    # None: SAUCI_VM_ALLOW_EMULATION, sauci.toml, else no.
    "VM_ALLOW_EMULATION": None,
    "SECRETS_FILE": None,
    "CACHE_LIMIT": None,  # step caches per repository: 2 GiB, "500MiB", 0 (off)
    "ARTIFACT_LIMIT": None,  # one step's artifacts together: 4 GiB, "500MiB"
    "MAX_STEP_PROCESSES": None,  # the most a step's `limits: processes` may say: 4096
}


def _is_store(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("list_builds", "get_build", "read_log"))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _forge(value: Any) -> bool:
    from sauci.contrib.django.forges import valid_forge

    return valid_forge(value)


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


_VALIDATORS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "STORE": (
        lambda v: v is None or (isinstance(v, str) and bool(v)) or _is_store(v),
        "a store URL such as 'sqlite:////var/lib/sauci/sauci.db', a Store instance, or None",
    ),
    "DATA_DIR": (lambda v: v is None or isinstance(v, str | Path), "a directory path or None"),
    "ARTIFACTS_DIR": (
        lambda v: v is None or isinstance(v, str | Path),
        "a directory path or None",
    ),
    "BROKER": (
        lambda v: v is None or (isinstance(v, str) and bool(v)),
        "a Celery broker URL such as 'redis://HOST:6379/0', or None",
    ),
    "PUBLIC": (lambda v: isinstance(v, bool), "True or False"),
    "PUBLIC_BADGES": (lambda v: isinstance(v, bool), "True or False"),
    "WEBHOOK_SECRET": (_optional_str, "a string or None"),
    "WEBHOOK_TOKEN": (_optional_str, "a string or None"),
    "WEBHOOK_MAX_BODY": (_positive_int, "a positive number of bytes"),
    "PAGE_SIZE": (lambda v: _positive_int(v) and v <= 500, "an integer from 1 to 500"),
    "LOG_TAIL_BYTES": (
        lambda v: _positive_int(v) and 1024 <= v <= 16 * 1024 * 1024,
        "a number of bytes from 1024 to 16 MiB",
    ),
    "LOG_STREAM_SECONDS": (_positive_number, "a positive number of seconds"),
    "LOG_SEARCH_BYTES": (
        lambda v: _positive_int(v) and 64 * 1024 <= v <= 1024 * 1024 * 1024,
        "a number of bytes from 64 KiB to 1 GiB",
    ),
    "HISTORY_BUILDS": (lambda v: _positive_int(v) and v <= 1000, "an integer from 1 to 1000"),
    "REFRESH_SECONDS": (_positive_number, "a positive number of seconds"),
    "TITLE": (lambda v: isinstance(v, str), "a string"),
    "FORGES": (
        lambda v: (
            isinstance(v, dict) and all(isinstance(k, str) and _forge(x) for k, x in v.items())
        ),
        'a dict of repository -> "github:URL", "gitlab:URL", "gitea:URL" or a dict of'
        ' "commit", "branch", "compare" URL templates',
    ),
    "METRICS": (lambda v: isinstance(v, bool), "True or False"),
    "METRICS_TOKEN": (_optional_str, "a string or None"),
    "ANALYTICS": (lambda v: v is None or isinstance(v, bool), "True, False or None"),
    "READY_CHECKS": (
        lambda v: isinstance(v, list | tuple) and all(c in READY_CHECK_NAMES for c in v),
        'a list of "store", "scheduler", "queue", "broker"',
    ),
    "HEARTBEAT_STALE_SECONDS": (_positive_number, "a positive number of seconds"),
    "QUEUE_STUCK_SECONDS": (_positive_number, "a positive number of seconds"),
    "LOGIN_URL": (
        lambda v: v is None or (isinstance(v, str) and bool(v)),
        "a URL or URL name, or None for the host's LOGIN_URL when it is a page, else the app's own",
    ),
    "SANDBOX": (
        lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
        "a sandbox name such as 'namespace' or 'docker', or None",
    ),
    "ALLOWED_SANDBOXES": (
        lambda v: (
            v is None or (isinstance(v, list | tuple) and all(isinstance(n, str) and n for n in v))
        ),
        "a list of sandbox names a pipeline may ask for, or None",
    ),
    "NETWORK": (lambda v: v is None or isinstance(v, bool), "True, False or None"),
    "VM_ALLOW_EMULATION": (lambda v: v is None or isinstance(v, bool), "True, False or None"),
    "SECRETS_FILE": (lambda v: v is None or isinstance(v, str | Path), "a file path or None"),
    "CACHE_LIMIT": (lambda v: v is None or isinstance(v, str | int), "a size such as '2GiB'"),
    "ARTIFACT_LIMIT": (lambda v: v is None or isinstance(v, str | int), "a size such as '4GiB'"),
    "MAX_STEP_PROCESSES": (
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        "a number of processes (at least 1) or None",
    ),
}
assert set(_VALIDATORS) == set(DEFAULTS)


@attrs.frozen
class Problem:
    """One thing wrong with ``SAUCI``: a stable id and a message with a hint."""

    id: str
    message: str
    hint: str = ""


def problems(value: Any) -> list[Problem]:
    """Everything wrong with a ``SAUCI`` value (empty when it is fine).

    sauci.E001: not a dict; sauci.E002: unknown key; sauci.E003: bad value.
    """
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Problem("sauci.E001", f"SAUCI must be a dict, not {type(value).__name__}")]
    found = []
    for key in value:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            found.append(
                Problem(
                    "sauci.E002",
                    f"SAUCI has an unknown key {key!r}",
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"known keys: {', '.join(DEFAULTS)}",
                )
            )
    for key, (ok, expected) in _VALIDATORS.items():
        if key in value and not ok(value[key]):
            found.append(
                Problem("sauci.E003", f"SAUCI[{key!r}] is {value[key]!r}", f"expected {expected}")
            )
    return found
