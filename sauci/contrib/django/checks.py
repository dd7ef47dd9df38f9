"""System checks for the ``SAUCI`` setting (ids sauci.E001-E003, sauci.W001)."""

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from sauci.contrib.django.conf import problems


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    raw = getattr(settings, "SAUCI", None)
    found: list[checks.CheckMessage] = [
        checks.Error(p.message, hint=p.hint or None, id=p.id) for p in problems(raw)
    ]
    if not found:
        cfg = raw or {}
        if not (
            cfg.get("WEBHOOK_SECRET")
            or cfg.get("WEBHOOK_TOKEN")
            or os.environ.get("SAUCI_WEBHOOK_SECRET")
            or os.environ.get("SAUCI_WEBHOOK_TOKEN")
        ):
            found.append(
                checks.Info(
                    "no webhook secret is set; the webhook receiver refuses every delivery",
                    hint="set SAUCI['WEBHOOK_SECRET'] or the environment variable "
                    "SAUCI_WEBHOOK_SECRET to receive pushes from GitHub, Gitea or GitLab",
                    id="sauci.I001",
                )
            )
    return found
