"""The tiny Django project behind ``sauci serve``: the UI at /, log-in, and the admin.

:func:`serve_ui` configures Django from SauCI's Settings and serves it with
waitress in this process; see :mod:`sauci.contrib.django.project.serve`.
"""

from sauci.contrib.django.project.serve import UIHandle, project_settings, serve_ui

__all__ = ["UIHandle", "project_settings", "serve_ui"]
