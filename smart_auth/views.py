"""HTTP views of the authorization server. Thin: the work is in authorization.py, grants.py,
discovery.py, launch.py and django-oauth-toolkit (whose views are subclassed, never copied).

The pages a person meets (sign in, consent, patient picker, Connected apps, EHR launch) are the
`consent` app's. This module reaches them only by the URL and template names in settings.SMART
(`CONSENT_URL_NAME`, `ERROR_TEMPLATE`), so smart_auth never imports consent.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import IntrospectTokenView, RevokeTokenView, TokenView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749.errors import (
    InvalidClientIdError,
    InvalidRedirectURIError,
    MismatchingRedirectURIError,
    MissingClientIdError,
    MissingRedirectURIError,
)
from rest_framework.response import Response

from fhir_api.capabilities import capability_statement
from fhir_api.views import CapabilityStatementView

from . import audit
from . import authorization as authz
from .discovery import openid_configuration, smart_configuration, with_security
from .keys import get_jwks
from .tokens import InvalidToken, default_token_signer

AccessToken = get_access_token_model()


class OAuthRedirect(HttpResponseRedirect):
    """A redirect to a registered app URI, whatever its scheme (already validated by DOT)."""

    allowed_schemes = ["http", "https"]

    def __init__(self, url):
        from oauth2_provider.settings import oauth2_settings

        self.allowed_schemes = oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES
        super().__init__(url)


def error_page(request, oauth_error, status=400):
    """Shown instead of redirecting when the client or redirect URI cannot be trusted.

    The template (the consent app's error page) words each `reason` for a person and shows
    oauthlib's description as the technical detail.
    """
    context = {"reason": _reason(oauth_error), "detail": _describe(oauth_error)}
    return render(request, settings.SMART["ERROR_TEMPLATE"], context, status=status)


def _reason(oauth_error):
    if isinstance(oauth_error, (InvalidClientIdError, MissingClientIdError)):
        return "unknown_app"
    if isinstance(
        oauth_error,
        (InvalidRedirectURIError, MismatchingRedirectURIError, MissingRedirectURIError),
    ):
        return "bad_redirect"
    return "bad_request"


# --- Authorization -------------------------------------------------------------------------


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class AuthorizeView(OAuthLibMixin, View):
    """/smart/authorize, GET or POST (SMART `authorize-post`): validate, keep, ask.

    The POST form is an authorization *request*, often auto-submitted from the app's own
    origin, so it is exempt from CSRF; it changes nothing but this session's pending request.
    The person's decision is posted to the consent page, which is CSRF-protected.
    """

    def get(self, request):
        return self.start(request)

    def post(self, request):
        return self.start(request)

    def start(self, request):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except FatalClientError as error:
            return error_page(request, error.oauthlib_error)
        except OAuthToolkitError as error:
            oauth_error = error.oauthlib_error
            if not oauth_error.redirect_uri:
                return error_page(request, oauth_error)
            return OAuthRedirect(
                authz.error_redirect_url(
                    oauth_error.redirect_uri,
                    oauth_error.error,
                    oauth_error.description or "",
                    oauth_error.state,
                )
            )
        application = credentials["request"].client
        try:
            pending = authz.check_authorization_request(application, scopes, credentials)
        except authz.AuthorizationError as error:
            return self.app_error(credentials, error.error, error.description)
        prompt = pending.prompt.split()
        if "none" in prompt and not request.user.is_authenticated:
            return self.app_error(credentials, "login_required", "The user is not logged in")
        pending_id = authz.do_store_pending(request.session, pending)
        consent_url = reverse(settings.SMART["CONSENT_URL_NAME"], args=[pending_id])
        return HttpResponseRedirect(consent_url)

    def app_error(self, credentials, error, description):
        return OAuthRedirect(
            authz.error_redirect_url(
                credentials["redirect_uri"], error, description, credentials.get("state")
            )
        )


def _describe(oauth_error):
    return oauth_error.description or oauth_error.error.replace("_", " ")


# --- Token, revocation, introspection (DOT's views, subclassed) ---------------------------

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token")


def _no_store(response):
    for name, value in NO_STORE.items():
        response[name] = value


class AuditedMixin:
    """Records each request's AuditEvent (`record_audit`) once its response is decided, and
    also when the view fails. For DOT's app-facing endpoints: CSRF-exempt and open to
    anonymous callers, as DOT's own `dispatch` is."""

    record_audit = None

    @method_decorator([csrf_exempt, login_not_required])
    def dispatch(self, request, *args, **kwargs):
        try:
            response = super().dispatch(request, *args, **kwargs)
        except Exception:
            self.record_audit(request, None, client_id=caller_client_id(request))
            raise
        self.record_audit(request, response, client_id=caller_client_id(request))
        return response


class SmartTokenView(AuditedMixin, TokenView):
    """/smart/token: DOT's token endpoint, run as one transaction.

    The whole exchange (validate the code, issue tokens, consume the code) commits or rolls
    back together, and the Grant row stays locked meanwhile (SmartValidator.validate_code), so a
    code is redeemed once even when two requests race.
    """

    record_audit = staticmethod(audit.record_token_request)

    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type")
        if grant_type is not None and grant_type not in SUPPORTED_GRANT_TYPES:
            # Only these are offered; DOT would otherwise route device_code itself.
            body = {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be authorization_code or refresh_token",
            }
            return JsonResponse(body, status=400, headers=NO_STORE)
        with transaction.atomic():
            response = super().post(request, *args, **kwargs)
        _no_store(response)
        return response


class SmartRevokeView(AuditedMixin, RevokeTokenView):
    """/smart/revoke (RFC 7009): an app revokes its own access or refresh token."""

    record_audit = staticmethod(audit.record_revocation)

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        _no_store(response)
        return response


class SmartIntrospectView(IntrospectTokenView):
    """/smart/introspect (RFC 7662) with SMART's context fields.

    A client authenticates with its credentials and may introspect only its own tokens.
    """

    def post(self, request, *args, **kwargs):
        return self.introspect(request, request.POST.get("token"))

    def get(self, request, *args, **kwargs):
        return self.introspect(request, request.GET.get("token"))

    def introspect(self, request, token):
        if not token:
            return JsonResponse(
                {"error": "invalid_request", "error_description": "token is required"},
                status=400,
                headers=NO_STORE,
            )
        data = introspection(token, caller_client_id(request))
        return JsonResponse(data, headers=NO_STORE)


def caller_client_id(request):
    """The client id the caller authenticated as, or claims (Basic or body), else None."""
    import base64
    from urllib.parse import unquote_plus

    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
            return unquote_plus(decoded.split(":", 1)[0])
        except (ValueError, UnicodeDecodeError):
            return None
    return request.POST.get("client_id")


def introspection(token, client_id):
    """RFC 7662 response for `token`, as seen by `client_id` (None: any client's token)."""
    checksum = hashlib.sha256(token.encode()).hexdigest()
    row = (
        AccessToken.objects.select_related("application", "user")
        .filter(token_checksum=checksum)
        .first()
    )
    if row is None or not row.is_valid() or row.application is None:
        return {"active": False}
    if client_id is not None and row.application.client_id != client_id:
        return {"active": False}
    try:
        claims = default_token_signer.verify_access_token(token)
    except InvalidToken:
        return {"active": False}
    data = {
        "active": True,
        "scope": row.scope,
        "client_id": row.application.client_id,
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": claims["iss"],
        "sub": claims["sub"],
        "aud": claims["aud"],
    }
    if row.user is not None:
        data["username"] = row.user.get_username()
    for claim in ("patient", "encounter", "fhirContext"):
        if claim in claims:
            data[claim] = claims[claim]
    if "fhirUser" in claims:
        data["fhirUser"] = f"{claims['aud']}/{claims['fhirUser']}"
    return data


# --- Discovery -----------------------------------------------------------------------------


def _public_json(data):
    return JsonResponse(data, headers={"Access-Control-Allow-Origin": "*"})


def smart_configuration_view(request):
    return _public_json(smart_configuration())


def openid_configuration_view(request):
    return _public_json(openid_configuration())


def jwks_view(request):
    response = _public_json(get_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


def style_view(request):
    return _public_json(settings.SMART["STYLE"])


class SmartCapabilityStatementView(CapabilityStatementView):
    """/fhir/metadata with the SMART security element (fhir_api itself knows no OAuth)."""

    def get(self, request):
        response = Response(with_security(capability_statement()))
        response["Access-Control-Allow-Origin"] = "*"
        return response
