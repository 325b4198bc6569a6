"""Routes of the SMART authorization server, mounted at the site root by config.urls.

Two paths sit under /fhir: the SMART-aware CapabilityStatement and the FHIR-base copy of the
smart-configuration. config.urls includes these routes before the FHIR API's, whose catch-all
would otherwise answer them. The pages for people (/smart/login, /smart/authorize/<id>,
/smart/manage, ...) are routed by consent.urls.
"""

from django.urls import path

from . import api, launch_api, views

app_name = "smart_auth"

apps = api.SmartAppViewSet.as_view({"get": "list", "post": "create"})
app = api.SmartAppViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"})

urlpatterns = [
    # Discovery
    path(".well-known/smart-configuration", views.smart_configuration_view, name="smart-config"),
    path(
        "fhir/.well-known/smart-configuration",
        views.smart_configuration_view,
        name="fhir-smart-config",
    ),
    path(".well-known/openid-configuration", views.openid_configuration_view, name="oidc-config"),
    path(".well-known/jwks.json", views.jwks_view, name="jwks"),
    path("fhir/metadata", views.SmartCapabilityStatementView.as_view(), name="metadata"),
    path("smart/style.json", views.style_view, name="style"),
    # OAuth 2.0 endpoints
    path("smart/authorize", views.AuthorizeView.as_view(), name="authorize"),
    path("smart/token", views.SmartTokenView.as_view(), name="token"),
    path("smart/revoke", views.SmartRevokeView.as_view(), name="revoke"),
    path("smart/introspect", views.SmartIntrospectView.as_view(), name="introspect"),
    # Client registry
    path("auth/token", api.AdminTokenView.as_view(), name="admin-token"),
    path("smart/apps", apps, name="apps"),
    path("smart/apps/<str:pk>", app, name="app"),
    # EHR launch, for the EHR (people launch from the consent app's /smart/ehr/ pages)
    path("smart/launch", launch_api.LaunchView.as_view(), name="launch"),
]
