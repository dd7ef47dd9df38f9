"""The pages and actions of the SauCI UI, gathered from the modules that hold them.

Pages read only through the Store protocol; actions (rerun, cancel,
trigger, webhook pushes) go only through the Scheduler, with the logged-in
user as the actor. Every view checks access itself: viewing needs
``sauci.view_builds`` unless ``SAUCI["PUBLIC"]``; each action needs its own
permission, a POST and a CSRF token.

- :mod:`~sauci.contrib.django.view_support`: access checks and shared lookups
- :mod:`~sauci.contrib.django.build_views`: the build list, a build, its artifacts
- :mod:`~sauci.contrib.django.result_views`: test results and a test's history
- :mod:`~sauci.contrib.django.repo_views`: the overview, analytics, the badge
- :mod:`~sauci.contrib.django.action_views`: rerun, cancel, trigger, the webhook
- :mod:`~sauci.contrib.django.log_views`: the log pages
"""

from __future__ import annotations

# The ``x as x`` imports keep importable from here the public names this module
# had before the split besides its views.
from sauci.contrib.django.action_views import cancel, rerun, trigger, webhook
from sauci.contrib.django.build_views import artifact_download, artifacts, build_detail, build_list
from sauci.contrib.django.repo_views import analytics, badge, overview
from sauci.contrib.django.result_views import TEST_ORDER as TEST_ORDER
from sauci.contrib.django.result_views import test_history, test_results
from sauci.contrib.django.view_support import viewer as viewer

__all__ = [
    "analytics",
    "artifact_download",
    "artifacts",
    "badge",
    "build_detail",
    "build_list",
    "cancel",
    "overview",
    "rerun",
    "test_history",
    "test_results",
    "trigger",
    "webhook",
]
