"""A host site with no login page of its own: only SauCI, under /ci/."""

from django.urls import include, path

urlpatterns = [path("ci/", include("sauci.contrib.django.urls"))]
