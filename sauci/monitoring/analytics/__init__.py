"""Opt-in usage analytics: an event interface and its sinks.

:class:`Analytics` hashes ids with a per-installation salt and hands events to
sinks; :class:`LocalSink` records them in SauCI's store (the UI's usage page
reads them), :class:`MixpanelSink` sends them to Mixpanel when
``SAUCI_MIXPANEL_TOKEN`` is set. Both send from a background thread, batched,
with a bounded queue and bounded retries; what is unsent at exit waits in a
:class:`Spool` for the next process. See docs/monitoring.md.
"""

from sauci.monitoring.analytics._analytics import Analytics, load_salt
from sauci.monitoring.analytics._base import AnalyticsEvent, BatchSender, Sink
from sauci.monitoring.analytics._spool import Spool
from sauci.monitoring.analytics.local import LocalSink, read_events
from sauci.monitoring.analytics.mixpanel import MixpanelSink, mixpanel_from_env

__all__ = [
    "Analytics",
    "AnalyticsEvent",
    "BatchSender",
    "LocalSink",
    "MixpanelSink",
    "Sink",
    "Spool",
    "load_salt",
    "mixpanel_from_env",
    "read_events",
]
