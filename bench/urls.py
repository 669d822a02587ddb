"""The benchmarks' URLs: the package's, as a site includes them."""

from django.urls import include, path

urlpatterns = [path("", include("renewals.urls"))]
