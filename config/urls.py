"""Top-level routes: each app's urls.py, mounted at its prefix."""

from django.contrib import admin
from django.urls import include, path

from fhir_api.views import SystemView

urlpatterns = [
    path("admin/", admin.site.urls),
    # The SMART authorization server. Before the FHIR API: it also serves /fhir/metadata and
    # /fhir/.well-known/smart-configuration, which the FHIR API's catch-all would answer.
    path("", include("smart_auth.urls")),
    # Pages for people: sign in, consent, patient picker, Connected apps, EHR launch.
    path("", include("consent.urls")),
    # Batch and transaction Bundles are POSTed to the base itself, without a trailing slash.
    path("fhir", SystemView.as_view(), name="fhir-base"),
    path("fhir/", include("fhir_api.urls")),
]
