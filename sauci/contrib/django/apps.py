"""The app's configuration: explicit wiring of checks and the settings cache."""

from __future__ import annotations

from django.apps import AppConfig


class SauCIConfig(AppConfig):
    name = "sauci.contrib.django"
    label = "sauci"
    verbose_name = "SauCI"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed

        from sauci.contrib.django import conf
        from sauci.contrib.django.checks import (
            check_broker,
            check_login_throttle,
            check_monitoring,
            check_settings,
        )

        checks.register(check_settings, checks.Tags.compatibility)
        checks.register(check_monitoring, checks.Tags.compatibility)
        checks.register(check_broker, checks.Tags.compatibility)
        checks.register(check_login_throttle, checks.Tags.security)
        setting_changed.connect(conf.on_setting_changed, dispatch_uid="sauci_setting_changed")
