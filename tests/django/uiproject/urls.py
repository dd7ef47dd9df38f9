from django.contrib.auth import views as auth_views
from django.urls import include, path


def boom(request):
    """A view that fails, for the tests of server-error logging."""
    raise RuntimeError("kaboom: secret detail")


urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="sauci/login.html"),
        name="host-login",
    ),
    path("ci/", include("sauci.contrib.django.urls")),
    path("boom/", boom),
]
