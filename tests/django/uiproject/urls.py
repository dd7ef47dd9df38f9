from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(template_name="sauci/login.html")),
    path("ci/", include("sauci.contrib.django.urls")),
]
