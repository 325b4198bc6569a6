"""Routes of the FHIR REST API, mounted at /fhir by config.urls."""

from django.urls import path, re_path

from . import views

TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<fhir_id>[A-Za-z0-9\-.]{1,64})"
VERSION = r"(?P<version_id>[A-Za-z0-9\-.]{1,64})"

resource = views.ResourceViewSet.as_view
app_name = "fhir"

urlpatterns = [
    path("metadata", views.CapabilityStatementView.as_view(), name="metadata"),
    path("", views.SystemView.as_view(), name="system"),
    path("_history", views.SystemHistoryView.as_view(), name="system-history"),
    re_path(rf"^{TYPE}$", resource({"get": "list", "post": "create"}), name="type"),
    re_path(rf"^{TYPE}/_search$", views.SearchView.as_view(), name="search"),
    re_path(rf"^{TYPE}/_history$", resource({"get": "history_type"}), name="type-history"),
    re_path(
        rf"^{TYPE}/{ID}$",
        resource({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="instance",
    ),
    re_path(
        rf"^{TYPE}/{ID}/_history$",
        resource({"get": "history_instance"}),
        name="instance-history",
    ),
    re_path(rf"^{TYPE}/{ID}/_history/{VERSION}$", resource({"get": "vread"}), name="vread"),
    # [\s\S], not ".": a path with an encoded newline is still an unknown FHIR endpoint.
    re_path(r"^[\s\S]*$", views.UnknownEndpointView.as_view(), name="unknown"),
]
