"""SauCI's results UI as a reusable Django app.

Add ``"sauci.contrib.django"`` to ``INSTALLED_APPS``, mount
``path("ci/", include("sauci.contrib.django.urls"))`` and set
``SAUCI = {"STORE": "sqlite:///..."}``. Pages read through SauCI's Store
protocol and actions go through the Scheduler; see docs/ui.md.
"""
