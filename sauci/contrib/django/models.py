"""The holder of SauCI's permissions; SauCI keeps no data in Django's database.

Django ties permissions to a content type, and content types to models. The
standard way to define permissions that no table backs is an unmanaged model
with ``default_permissions = ()`` (no add/change/delete/view noise): Django
creates its content type and the four permissions below after ``migrate``,
and they are granted in the admin like any other (``sauci.view_builds``).
"""

from __future__ import annotations

from django.db import models

PERMISSIONS = (
    ("view_builds", "Can view SauCI builds, logs and results"),
    ("trigger_builds", "Can trigger SauCI builds"),
    ("cancel_builds", "Can cancel SauCI builds"),
    ("rerun_builds", "Can rerun SauCI builds"),
)


class SauCIPermissions(models.Model):
    """No table: only a content type for SauCI's permissions."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = PERMISSIONS
        verbose_name = "SauCI permission"
