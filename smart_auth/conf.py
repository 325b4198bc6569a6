"""Absolute URLs and identifiers every part of the authorization server agrees on.

Read from settings on each call (not at import) so a test or a deployment that overrides
PUBLIC_BASE_URL / FHIR_BASE_URL / SMART_ISSUER sees one consistent set.
"""

from django.conf import settings
from django.urls import reverse
from oauth2_provider.settings import oauth2_settings


def get_issuer():
    """`iss` of every token and the `issuer` of both discovery documents."""
    return (oauth2_settings.OIDC_ISS_ENDPOINT or settings.PUBLIC_BASE_URL).rstrip("/")


def get_fhir_base():
    """The FHIR base URL: the `aud` an app must send and every SMART access token carries."""
    return settings.FHIR_BASE_URL.rstrip("/")


def get_admin_audience():
    return settings.SMART["ADMIN_AUDIENCE"]


def absolute_url(view_name, *args):
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse(view_name, args=args)


def get_endpoints():
    """The server's OAuth endpoints, as advertised in discovery and the CapabilityStatement."""
    return {
        "authorize": absolute_url("smart_auth:authorize"),
        "token": absolute_url("smart_auth:token"),
        "introspect": absolute_url("smart_auth:introspect"),
        "revoke": absolute_url("smart_auth:revoke"),
        "manage": absolute_url(settings.SMART["MANAGEMENT_URL_NAME"]),
        "jwks": absolute_url("smart_auth:jwks"),
        "style": absolute_url("smart_auth:style"),
    }
