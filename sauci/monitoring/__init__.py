"""Monitoring of SauCI: Prometheus metrics, readiness, usage analytics.

Nothing here is imported by ``import sauci``; prometheus_client is imported
only when metrics are switched on, the analytics only when they are opted in.
:func:`install` wires everything for one process; see docs/monitoring.md.
"""

from sauci.monitoring._install import Monitoring, analytics_opted_in, current, install

__all__ = ["Monitoring", "analytics_opted_in", "current", "install"]
