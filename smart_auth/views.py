"""HTTP views of the authorization server. Thin: the work is in authorization.py, grants.py,
discovery.py, launch.py and django-oauth-toolkit (whose views are subclassed, never copied).

The pages a person meets (sign in, consent, patient picker, Connected apps, EHR launch) are the
`consent` app's. This module reaches them only by the URL and template names in settings.SMART
(`CONSENT_URL_NAME`, `ERROR_TEMPLATE`), so smart_auth never imports consent.
"""

from contextlib import nullcontext

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import IntrospectTokenView, RevokeTokenView, TokenView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749.errors import (
    InvalidClientIdError,
    InvalidRedirectURIError,
    MismatchingRedirectURIError,
    MissingClientIdError,
    MissingRedirectURIError,
    OAuth2Error,
)
from oauthlib.oauth2.rfc6749.tokens import get_token_from_header
from rest_framework.response import Response

from fhir_api.capabilities import capability_statement
from fhir_api.views import CapabilityStatementView

from . import audit
from . import authorization as authz
from .discovery import openid_configuration, smart_configuration, with_security
from .introspection import caller_client_id, introspection
from .keys import get_jwks
from .revocation import do_revoke_token_family


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
SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
# Kept out of Django's error reports.
SECRET_PARAMETERS = ("client_secret", "client_assertion", "code", "code_verifier", "refresh_token")


def _no_store(response):
    for name, value in NO_STORE.items():
        response[name] = value


def refuse_nul_bytes(request):
    """400 invalid_request if a form parameter holds a NUL byte, else None.

    No OAuth value has one, and PostgreSQL refuses to compare one with a text column: DOT
    would look a code, token or client id holding it up and fail with a 500.
    """
    for name, values in request.POST.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            body = {
                "error": "invalid_request",
                "error_description": f"The {name.replace(chr(0), '')!r} parameter holds a NUL byte",
            }
            return JsonResponse(body, status=400, headers=NO_STORE)
    return None


class AuditedMixin:
    """Records each request's AuditEvent (`record_audit`) once its response is decided, and
    also when the view fails. For DOT's app-facing endpoints: CSRF-exempt and open to
    anonymous callers, as DOT's own `dispatch` is."""

    record_audit = None

    @method_decorator([csrf_exempt, login_not_required])
    def dispatch(self, request, *args, **kwargs):
        try:
            response = refuse_nul_bytes(request) or super().dispatch(request, *args, **kwargs)
        except Exception:
            self.record_audit(request, None, client_id=caller_client_id(request))
            raise
        self.record_audit(request, response, client_id=caller_client_id(request))
        return response


class SmartTokenView(AuditedMixin, TokenView):
    """/smart/token: DOT's token endpoint, a code or refresh exchange run as one transaction.

    The whole exchange (validate the code, issue tokens, consume the code) commits or rolls
    back together, and the Grant row stays locked meanwhile (SmartValidator.validate_code), so a
    code is redeemed once even when two requests race. client_credentials writes one row (and
    a private_key_jwt's jti first, which is spent either way), so it runs without one: a
    transaction would only add round trips. Clients authenticate with a secret or a
    private_key_jwt assertion (SmartValidator.authenticate_client).
    """

    record_audit = staticmethod(audit.record_token_request)

    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type")
        if grant_type is not None and grant_type not in SUPPORTED_GRANT_TYPES:
            # Only these are offered; DOT would otherwise route device_code itself.
            body = {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be one of "
                + ", ".join(SUPPORTED_GRANT_TYPES),
            }
            return JsonResponse(body, status=400, headers=NO_STORE)
        atomic = nullcontext() if grant_type == "client_credentials" else transaction.atomic()
        with atomic:
            response = super().post(request, *args, **kwargs)
        _no_store(response)
        if response["Content-Type"].startswith("text/html"):
            # Every answer here is JSON, but oauthlib gives no Content-Type with an error
            # raised while the token is saved (RFC 8707's invalid_target), and Django's
            # default is HTML.
            response["Content-Type"] = "application/json"
        return response

    @method_decorator(sensitive_post_parameters(*SECRET_PARAMETERS))
    def authorization_flow_token_response(self, request, *args, **kwargs):
        """DOT's, which reads the token it just stored back from the database to send
        `app_authorized`: one query per token. Only done when something listens."""
        if app_authorized.has_listeners(self):
            return super().authorization_flow_token_response(request, *args, **kwargs)
        _url, headers, body, status = self.create_token_response(request)
        return HttpResponse(content=body, status=status, headers=headers)


class SmartRevokeView(AuditedMixin, RevokeTokenView):
    """/smart/revoke (RFC 7009): an app revokes its own access or refresh token. A refresh
    token revokes its whole family (`revocation.py`); an access token, its refresh token."""

    record_audit = staticmethod(audit.record_revocation)

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            # DOT answers 200 only once the client authenticated as this client id.
            do_revoke_token_family(request.POST.get("token"), caller_client_id(request))
        _no_store(response)
        return response


# DOT's convention: a resource server's bearer token must carry this scope to introspect.
INTROSPECTION_SCOPE = IntrospectTokenView.required_scopes[0]


class SmartIntrospectView(IntrospectTokenView):
    """/smart/introspect (RFC 7662) with SMART's context fields (`introspection.py`).

    Two kinds of caller, as DOT's view and the SMART IG have it: a client authenticating as
    at the token endpoint (secret or client assertion) sees only its own tokens; a resource
    server presenting `Authorization: Bearer <token with the introspection scope>` sees any.
    POST only (RFC 7662 §2.1): a token in a query string would end up in access logs.
    """

    http_method_names = ["post", "options"]

    def authenticate_client(self, request):
        """DOT's hook, asked first: True if the caller authenticated as a client, which it
        remembers (DOT's own answer is a bare bool, and the client id a caller *claims* is not
        proof: with a client assertion there is none in the form at all)."""
        oauth_request = self.oauthlib_request(request)
        try:
            authenticated = self.validator().authenticate_client(oauth_request)
        except OAuth2Error as error:
            request.smart_client_error = error.description
            return False
        if authenticated:
            request.smart_introspecting_client = oauth_request.client
        return bool(authenticated)

    def verify_request(self, request):
        """DOT's hook for the resource server's bearer token, checked as an access token only.

        oauthlib's OpenID server would take any JWT-shaped bearer token (ours all are) for an
        id_token (DOT's `validate_jwt_bearer_token`), and an id_token is no credential.
        """
        oauth_request = self.oauthlib_request(request)
        token = get_token_from_header(oauth_request)
        valid = self.validator().validate_bearer_token(token, self.get_scopes(), oauth_request)
        return valid, oauth_request

    def oauthlib_request(self, request):
        """The oauthlib Request DOT's core builds for `request` (it keeps its own to itself)."""
        return OauthlibRequest(*self.get_oauthlib_core()._extract_params(request))

    def validator(self):
        return self.get_oauthlib_core().server.request_validator

    def post(self, request, *args, **kwargs):
        token = request.POST.get("token")
        if not token:
            body = {"error": "invalid_request", "error_description": "token is required"}
            return JsonResponse(body, status=400, headers=NO_STORE)
        # No client: DOT let a bearer token with the `introspection` scope in.
        client = getattr(request, "smart_introspecting_client", None)
        return JsonResponse(introspection(token, client), headers=NO_STORE)

    def unauthenticated_response(self, request, oauthlib_request=None):
        """RFC 7662 §2.3: a 401 either way, never DOT's bare 403. Client credentials that fail
        get RFC 6749 §5.2's `invalid_client`; a bearer token that is invalid or lacks the
        `introspection` scope gets RFC 6750 §3's challenge."""
        scheme = request.headers.get("Authorization", "").split(" ", 1)[0]
        if scheme.lower() == "bearer":
            error = getattr(oauthlib_request, "oauth2_error", None) or {}
            code = error.get("error", "invalid_token")
            description = (
                f"The token does not have the {INTROSPECTION_SCOPE} scope"
                if code == "insufficient_scope"
                else "The bearer token is invalid, expired or revoked"
            )
            challenge = f'Bearer realm="smart", error="{code}", scope="{INTROSPECTION_SCOPE}"'
        else:
            code = "invalid_client"
            description = getattr(request, "smart_client_error", None) or (
                "Client authentication failed: send the client's credentials, or a bearer "
                f"token with the {INTROSPECTION_SCOPE} scope"
            )
            challenge = 'Basic realm="smart"'
        return JsonResponse(
            {"error": code, "error_description": description},
            status=401,
            headers={**NO_STORE, "WWW-Authenticate": challenge},
        )


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
