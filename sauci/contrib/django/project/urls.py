"""URLs of the built-in project: log-in/out, the admin (users, permissions), the UI at /.

The login page is the app's own view (throttled by django-axes, back to
``next`` after); it stays at /accounts/login/, where ``sauci serve`` has
always had it. Logging out is the app's ``logout/``, a POST.
"""

from django.contrib import admin
from django.urls import include, path

from sauci.contrib.django.account_views import LoginView
from sauci.contrib.django.security import csp

urlpatterns = [
    path("accounts/login/", csp(LoginView.as_view()), name="login"),
    path("admin/", admin.site.urls),
    path("", include("sauci.contrib.django.urls")),
]
