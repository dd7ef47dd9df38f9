"""Monitoring of SauCI: Prometheus metrics, readiness, usage analytics.

Nothing here is imported by ``import sauci``; prometheus_client and mixpanel
are imported only when metrics or the Mixpanel sink are switched on.
:func:`install` wires everything for one process; see docs/monitoring.md.
"""

from sauci.monitoring._install import Monitoring, analytics_opted_in, current, install

__all__ = ["Monitoring", "analytics_opted_in", "current", "install"]
