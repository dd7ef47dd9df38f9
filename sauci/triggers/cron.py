"""Cron schedules for timed builds: :class:`sauci.core.cron.CronSchedule`, named here too.

The pipeline reader and the settings validate schedules with it, so it lives
in the core; the cron trigger (:mod:`sauci.triggers.due`) finds its next time.
"""

from sauci.core.cron import CronSchedule

__all__ = ["CronSchedule"]
