"""The API's URLs; ``renewals.urls`` includes them under ``api/v1/``."""

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, re_path
from django.views.decorators.csrf import csrf_exempt

from .errors import not_found
from .openapi import openapi_document
from .views import ROUTES


@csrf_exempt  # it changes nothing, so no method of it needs the check
def unknown_path(request: HttpRequest) -> HttpResponse:
    return not_found().response()


urlpatterns: list[URLPattern] = [
    *(route.urlpattern() for route in ROUTES),
    path("openapi.json", csrf_exempt(openapi_document), name="api_openapi"),
    # Last: any other address under the API is a 404 in the API's error shape (and never
    # APPEND_SLASH's redirect, which would turn a POST into a GET).
    re_path(r"", unknown_path),
]
