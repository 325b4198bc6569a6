"""HTTP views of the authorization server. Thin: the work is in authorization.py, grants.py,
discovery.py, launch.py and django-oauth-toolkit (whose views are subclassed, never copied).

The pages here (login, consent, patient picker, connected apps, EHR launch) are deliberately
minimal and replaceable: the `consent` app can route its own pages to the same functions.
"""

import hashlib

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.views import IntrospectTokenView, RevokeTokenView, TokenView
from oauth2_provider.views.mixins import OAuthLibMixin
from rest_framework.response import Response

from fhir_api.capabilities import capability_statement
from fhir_api.views import CapabilityStatementView

from . import authorization as authz
from .discovery import openid_configuration, smart_configuration, with_security
from .grants import do_revoke_app_access, get_connected_apps
from .keys import get_jwks
from .launch import do_create_launch, get_launch_url
from .patients import search_patients
from .tokens import InvalidToken, default_token_signer

SmartApp = get_application_model()
AccessToken = get_access_token_model()


class OAuthRedirect(HttpResponseRedirect):
    """A redirect to a registered app URI, whatever its scheme (already validated by DOT)."""

    allowed_schemes = ["http", "https"]

    def __init__(self, url):
        from oauth2_provider.settings import oauth2_settings

        self.allowed_schemes = oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES
        super().__init__(url)


def error_page(request, message, status=400):
    """Shown instead of redirecting when the client or redirect URI cannot be trusted."""
    return render(request, "smart_auth/error.html", {"message": message}, status=status)


# --- Authorization -------------------------------------------------------------------------


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class AuthorizeView(OAuthLibMixin, View):
    """/smart/authorize, GET or POST (SMART `authorize-post`): validate, keep, ask.

    The POST form is an authorization *request*, often auto-submitted from the app's own
    origin, so it is exempt from CSRF; it changes nothing but this session's pending request.
    The person's decision is posted to ConsentView, which is CSRF-protected.
    """

    def get(self, request):
        return self.start(request)

    def post(self, request):
        return self.start(request)

    def start(self, request):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except FatalClientError as error:
            return error_page(request, _describe(error.oauthlib_error))
        except OAuthToolkitError as error:
            oauth_error = error.oauthlib_error
            if not oauth_error.redirect_uri:
                return error_page(request, _describe(oauth_error))
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
        return HttpResponseRedirect(reverse("smart_auth:consent", args=[pending_id]))

    def app_error(self, credentials, error, description):
        return OAuthRedirect(
            authz.error_redirect_url(
                credentials["redirect_uri"], error, description, credentials.get("state")
            )
        )


def _describe(oauth_error):
    return oauth_error.description or oauth_error.error.replace("_", " ")


class PendingMixin(LoginRequiredMixin):
    """Loads the session's pending request named in the URL; an error page if it is gone."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        try:
            self.pending = authz.get_pending(request.session, kwargs["pending_id"])
        except authz.PendingNotFound:
            return error_page(
                request,
                "This sign-in request has expired or was already used. Start again from the app.",
            )
        if self.pending.launch_user_id not in (None, request.user.pk):
            return self.redirect(
                authz.do_deny(request, self.pending, "The launch was opened by another user")
            )
        return super().dispatch(request, *args, **kwargs)

    def redirect(self, url):
        return OAuthRedirect(url)

    def approve(self, scopes, patient=None):
        try:
            return self.redirect(
                authz.do_approve(self.request, self.pending, scopes, patient=patient)
            )
        except authz.AuthorizationError as error:
            authz.do_forget_pending(self.request.session, self.pending.id)
            return self.redirect(
                authz.error_redirect_url(
                    self.pending.redirect_uri, error.error, error.description, self.pending.state
                )
            )


@method_decorator(never_cache, name="dispatch")
class ConsentView(PendingMixin, View):
    """The consent page: each scope in plain words with a checkbox, Approve or Deny."""

    template_name = "smart_auth/consent.html"

    def get(self, request, pending_id):
        remembered = authz.get_remembered_scopes(request.user, self.pending)
        if remembered is not None and not authz.needs_patient_choice(
            self.pending, request.user, remembered
        ):
            return self.approve(remembered)
        if "none" in self.pending.prompt.split():
            return self.redirect(
                authz.error_redirect_url(
                    self.pending.redirect_uri,
                    "consent_required",
                    "The user has not approved this app",
                    self.pending.state,
                )
            )
        summary = authz.describe_pending(self.pending, request.user)
        return render(request, self.template_name, {"summary": summary, "pending": self.pending})

    def post(self, request, pending_id):
        if "deny" in request.POST:
            return self.redirect(authz.do_deny(request, self.pending))
        chosen = request.POST.getlist("scope")
        if authz.needs_patient_choice(self.pending, request.user, chosen):
            authz.do_choose_scopes(request.session, self.pending, chosen)
            return HttpResponseRedirect(reverse("smart_auth:pick-patient", args=[pending_id]))
        return self.approve(chosen)


@method_decorator(never_cache, name="dispatch")
class PatientPickerView(PendingMixin, View):
    """A clinician picks the patient in context: search by name, paged."""

    template_name = "smart_auth/pick_patient.html"

    def get(self, request, pending_id, error=None):
        name = request.GET.get("name", "")
        try:
            page = int(request.GET.get("page", "1"))
        except ValueError:
            page = 1
        context = {
            "pending": self.pending,
            "name": name,
            "results": search_patients(name, page),
            "error": error,
        }
        return render(request, self.template_name, context, status=400 if error else 200)

    def post(self, request, pending_id):
        scopes = self.pending.chosen_scopes or self.pending.scopes
        try:
            return self.redirect(
                authz.do_approve(request, self.pending, scopes, patient=request.POST.get("patient"))
            )
        except authz.PatientRequired:
            return self.get(request, pending_id, error="Choose a patient from the list.")
        except authz.AuthorizationError as error:
            return self.redirect(
                authz.error_redirect_url(
                    self.pending.redirect_uri, error.error, error.description, self.pending.state
                )
            )


# --- Token, revocation, introspection (DOT's views, subclassed) ---------------------------

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token")


def _no_store(response):
    for name, value in NO_STORE.items():
        response[name] = value


class SmartTokenView(TokenView):
    """/smart/token: DOT's token endpoint, run as one transaction.

    The whole exchange (validate the code, issue tokens, consume the code) commits or rolls
    back together, and the Grant row stays locked meanwhile (SmartValidator.validate_code), so a
    code is redeemed once even when two requests race.
    """

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


class SmartRevokeView(RevokeTokenView):
    """/smart/revoke (RFC 7009): an app revokes its own access or refresh token."""

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
    """The client id the introspection caller authenticated as (Basic or body), else None."""
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
    from django.conf import settings

    return _public_json(settings.SMART["STYLE"])


class SmartCapabilityStatementView(CapabilityStatementView):
    """/fhir/metadata with the SMART security element (fhir_api itself knows no OAuth)."""

    def get(self, request):
        response = Response(with_security(capability_statement()))
        response["Access-Control-Allow-Origin"] = "*"
        return response


# --- Pages for people: login, connected apps, EHR launch ----------------------------------


class LoginView(auth_views.LoginView):
    template_name = "smart_auth/login.html"
    redirect_authenticated_user = False


@method_decorator(never_cache, name="dispatch")
class ManageView(LoginRequiredMixin, View):
    """Connected apps (the `management_endpoint`): what the person granted, and revoke."""

    template_name = "smart_auth/manage.html"

    def get(self, request):
        return render(request, self.template_name, {"apps": get_connected_apps(request.user)})

    def post(self, request):
        application = get_object_or_404(SmartApp, client_id=request.POST.get("client_id", ""))
        do_revoke_app_access(request.user, application)
        return HttpResponseRedirect(reverse("smart_auth:manage"))


@method_decorator(never_cache, name="dispatch")
class LaunchView(LoginRequiredMixin, View):
    """A minimal EHR: open an app with a patient (and visit) in context (SMART EHR launch)."""

    template_name = "smart_auth/launch.html"

    def get(self, request):
        apps = SmartApp.objects.filter(is_active=True).exclude(launch_uri="").order_by("name")
        return render(request, self.template_name, {"apps": apps})

    def post(self, request):
        application = get_object_or_404(
            SmartApp, client_id=request.POST.get("client_id", ""), is_active=True
        )
        patient = authz.get_own_patient(request.user) or request.POST.get("patient", "").strip()
        if not application.launch_uri or (patient and not authz.patient_exists(patient)):
            return error_page(request, "Choose an app with a launch URI and an existing patient.")
        handle = do_create_launch(
            request.user,
            application,
            patient=patient,
            encounter=request.POST.get("encounter", "").strip(),
        )
        return OAuthRedirect(get_launch_url(application, handle))
