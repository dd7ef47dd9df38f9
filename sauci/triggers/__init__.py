"""Triggers: what turns a push, a poll, a webhook or a clock into a BuildRequest.

The server (``sauci serve``) reads the spool that git hooks write, polls
repositories it cannot hook, answers webhooks and fires cron schedules; each
of these only produces :class:`~sauci.core.models.BuildRequest` values, and
the scheduler queues them in the store.
"""

from sauci.source.git import is_bare, repo_id
from sauci.triggers.cron import CronSchedule
from sauci.triggers.hooks import hook_installed, install_hook, remove_hook
from sauci.triggers.poller import Poller
from sauci.triggers.spool import ack, ensure_spool, read_requests, write_request
from sauci.triggers.webhook import WebhookResult, handle_webhook

__all__ = [
    "CronSchedule",
    "Poller",
    "WebhookResult",
    "ack",
    "ensure_spool",
    "handle_webhook",
    "hook_installed",
    "install_hook",
    "is_bare",
    "read_requests",
    "remove_hook",
    "repo_id",
    "write_request",
]
