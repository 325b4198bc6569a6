"""An authorization request between /smart/authorize and the redirect back to the app.

The flow, and the functions the consent pages call:

1. /smart/authorize (GET or POST) validates the request with django-oauth-toolkit/oauthlib
   (client, exact redirect URI, response_type, PKCE, registered scopes) and then the SMART
   rules here (`check_authorization_request`: S256 only, `aud`, `launch`). The request is kept
   server-side in the session (`do_store_pending`), so nothing the browser posts later can
   change it.
2. The person logs in, sees `describe_pending(...)` (app name, redirect host, each scope in plain
   words) and approves a subset, picking a patient if one is needed.
3. `do_approve(...)` makes the code through DOT (the Grant and its LaunchContext) and returns
   the redirect URL; `do_deny(...)` returns the `access_denied` redirect.

Every error after the client and redirect URI are known goes back to the app as
`error`, `error_description` and the exact `state`; unknown clients and unregistered redirect
URIs get an error page instead (never a redirect).
"""

import copy
import hashlib
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import QueryDict
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import add_params_to_uri

from . import audit
from .conf import get_fhir_base
from .launch import (
    LAUNCH_OTHER_PATIENT,
    InvalidLaunch,
    access_launch,
    check_launch_user,
    do_consume_launch,
    get_fhir_user,
)
from .models import FhirUser, LaunchContext, RememberedApproval
from .scopes import describe_scope, needs_patient

SESSION_KEY = "smart_pending"
MAX_PENDING = 10
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
_S256_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


ERROR_DESCRIPTIONS = {
    "unauthorized_client": "This app may not use this response_type or grant",
    "unsupported_response_type": "response_type must be code",
    "invalid_scope": "None of the requested scopes can be granted",
    "invalid_request": "The authorization request is malformed",
    "access_denied": "The user denied access",
}


class AuthorizationError(Exception):
    """An error to send back to the app: `error` code and `error_description`."""

    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


class PendingNotFound(Exception):
    """No such pending request in this session (expired, finished, or another browser)."""


class PatientRequired(Exception):
    """The grant needs a patient in context and the person has not picked one."""


@dataclass
class PendingAuthorization:
    """A validated authorization request waiting for the person's decision."""

    id: str
    client_id: str
    app_name: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    code_challenge_method: str
    # Requested scopes the app is registered for, in request order (the most it can get).
    scopes: list
    nonce: str | None = None
    claims: str | None = None
    prompt: str = ""
    launch_id: int | None = None
    launch_user_id: int | None = None
    patient: str = ""
    encounter: str = ""
    fhir_context: list = field(default_factory=list)
    need_patient_banner: bool = True
    # Scopes approved on the consent page while the person still picks a patient.
    chosen_scopes: list | None = None
    created: float = field(default_factory=time.time)

    @property
    def redirect_host(self):
        return urlsplit(self.redirect_uri).netloc

    @property
    def is_ehr_launch(self):
        return self.launch_id is not None


@dataclass(frozen=True)
class ScopeChoice:
    scope: str
    description: str


@dataclass(frozen=True)
class AuthorizationSummary:
    """What the consent page shows."""

    app_name: str
    redirect_host: str
    scopes: list
    needs_patient_choice: bool
    patient: str
    encounter: str = ""


# --- 1. Checking and keeping the request --------------------------------------------------


def check_authorization_request(application, scopes, credentials):
    """The SMART rules DOT does not know, applied after DOT validated the request.

    `scopes` are the requested scopes the app is registered for; `credentials` is what
    DOT's validate_authorization_request returned (it carries the oauthlib request).
    Returns a PendingAuthorization or raises AuthorizationError.
    """
    oauth_request = credentials["request"]
    if credentials.get("code_challenge_method") != "S256":
        raise AuthorizationError(
            "invalid_request", "PKCE is required with code_challenge_method=S256"
        )
    if not _S256_CHALLENGE_RE.match(credentials.get("code_challenge") or ""):
        raise AuthorizationError("invalid_request", "code_challenge is not a S256 challenge")
    aud = getattr(oauth_request, "aud", None) or ""
    if not aud:
        raise AuthorizationError("invalid_request", "aud (the FHIR base URL) is required")
    if aud.rstrip("/") != get_fhir_base():
        raise AuthorizationError("invalid_request", f"aud must be {get_fhir_base()}")

    pending = PendingAuthorization(
        id=secrets.token_urlsafe(16),
        client_id=application.client_id,
        app_name=application.name or application.client_id,
        redirect_uri=credentials["redirect_uri"],
        state=credentials.get("state"),
        code_challenge=credentials["code_challenge"],
        code_challenge_method="S256",
        scopes=list(scopes),
        nonce=credentials.get("nonce") or getattr(oauth_request, "nonce", None),
        claims=getattr(oauth_request, "claims", None),
        prompt=getattr(oauth_request, "prompt", None) or "",
    )
    handle = getattr(oauth_request, "launch", None)
    if handle:
        try:
            launch = access_launch(handle, application)
        except InvalidLaunch as error:
            raise AuthorizationError("invalid_request", str(error)) from None
        pending.launch_id = launch.pk
        pending.launch_user_id = launch.user_id
        pending.patient = launch.patient
        pending.encounter = launch.encounter
        pending.fhir_context = launch.fhir_context
        pending.need_patient_banner = launch.need_patient_banner
    else:
        # `launch` asks for an EHR launch's context; without a launch there is none to give.
        pending.scopes = [scope for scope in pending.scopes if scope != "launch"]
    if not pending.scopes:
        raise AuthorizationError("invalid_scope", "None of the requested scopes can be granted")
    return pending


def do_store_pending(session, pending):
    """Keep `pending` in the session (DB-backed: every worker sees it). Returns its id."""
    stored = dict(session.get(SESSION_KEY, {}))
    stored[pending.id] = asdict(pending)
    if len(stored) > MAX_PENDING:
        oldest = sorted(stored, key=lambda key: stored[key]["created"])
        for key in oldest[: len(stored) - MAX_PENDING]:
            del stored[key]
    session[SESSION_KEY] = stored
    return pending.id


def get_pending(session, pending_id):
    """The pending request `pending_id` of this session, or PendingNotFound."""
    data = session.get(SESSION_KEY, {}).get(pending_id)
    if data is None:
        raise PendingNotFound(pending_id)
    pending = PendingAuthorization(**data)
    if time.time() - pending.created > settings.SMART["PENDING_REQUEST_LIFETIME"]:
        do_forget_pending(session, pending_id)
        raise PendingNotFound(pending_id)
    return pending


def do_choose_scopes(session, pending, scopes):
    """Remember the scopes approved on the consent page until a patient is picked."""
    chosen = set(scopes)
    pending.chosen_scopes = [scope for scope in pending.scopes if scope in chosen]
    do_store_pending(session, pending)


def do_forget_pending(session, pending_id):
    stored = dict(session.get(SESSION_KEY, {}))
    if stored.pop(pending_id, None) is not None:
        session[SESSION_KEY] = stored


# --- 2. What the person sees --------------------------------------------------------------


def get_own_patient(user):
    """The Patient id of a patient user (their FhirUser link), else ""."""
    link = FhirUser.objects.filter(user=user, resource_type="Patient").only("fhir_id").first()
    return link.fhir_id if link else ""


def describe_pending(pending, user):
    """App name, redirect host and each scope in plain words, for the consent page."""
    own_patient = get_own_patient(user)
    for_patient = bool(own_patient)
    return AuthorizationSummary(
        app_name=pending.app_name,
        redirect_host=pending.redirect_host,
        scopes=[
            ScopeChoice(scope, describe_scope(scope, for_patient=for_patient))
            for scope in pending.scopes
        ],
        needs_patient_choice=needs_patient_choice(pending, user, pending.scopes),
        patient=pending.patient or own_patient,
        encounter=pending.encounter,
    )


def needs_patient_choice(pending, user, scopes):
    """True if approving `scopes` needs the person (a clinician) to pick a patient first."""
    if pending.patient or not needs_patient(scopes):
        return False
    return not get_own_patient(user)


def get_remembered_scopes(user, pending):
    """The scopes `user` granted the last time this app asked for the same set, or None."""
    if "consent" in pending.prompt.split():
        return None
    approval = (
        RememberedApproval.objects.filter(
            user=user,
            application__client_id=pending.client_id,
            request_key=_request_key(pending.scopes),
        )
        .only("granted_scopes")
        .first()
    )
    return approval.granted_scopes.split() if approval else None


def _request_key(scopes):
    return hashlib.sha256(" ".join(sorted(set(scopes))).encode()).hexdigest()


# --- 3. The decision ------------------------------------------------------------------------


def check_pending_user(pending, user):
    """AuthorizationError if `user` may not decide on `pending`, an EHR launch: one a person
    opened reached another person's session (a shared link, or someone else signed in
    meanwhile), or one for a patient's record reached a patient user who is someone else.

    Checked when the consent page opens and again when the person approves: they may sign in
    only after the authorization request arrived.
    """
    if not pending.is_ehr_launch:
        return
    try:
        check_launch_user(pending.launch_user_id, user)
    except InvalidLaunch as error:
        raise AuthorizationError("invalid_request", str(error)) from None
    own_patient = get_own_patient(user)
    if pending.patient and own_patient and own_patient != pending.patient:
        raise AuthorizationError("invalid_request", LAUNCH_OTHER_PATIENT)


def do_approve(request, pending, scopes, *, patient=None, remember=True):
    """Grant `scopes` (a subset of the pending ones) and return the redirect URL with the code.

    `patient` is the Patient id a clinician picked; a patient user always gets their own
    Patient and an EHR launch the EHR's. Raises PatientRequired if a patient is needed and
    none is known, AuthorizationError for anything the app must hear about. Both the grant
    and a refused one are audited.
    """
    try:
        return _approve(request, pending, scopes, patient=patient, remember=remember)
    except AuthorizationError as error:
        _record_refusal(request, pending, scopes, error)
        raise


def do_refuse(request, pending, error):
    """End `pending` with `error` (an AuthorizationError found before the person decided):
    audited like a refused approval. Returns the app's error redirect URL."""
    do_forget_pending(request.session, pending.id)
    _record_refusal(request, pending, [], error)
    return error_redirect_url(pending.redirect_uri, error.error, error.description, pending.state)


def _record_refusal(request, pending, scopes, error):
    audit.record_consent(
        "C",
        request.user,
        pending.client_id,
        app_name=pending.app_name,
        scopes=scopes,
        patient=pending.patient or None,
        outcome=audit.MINOR_FAILURE,
        outcome_desc=f"{error.error}: {error.description}",
    )


def _approve(request, pending, scopes, *, patient, remember):
    user = request.user
    check_pending_user(pending, user)
    chosen = set(scopes)
    granted = [scope for scope in pending.scopes if scope in chosen]
    if not granted:
        raise AuthorizationError("access_denied", "No scopes were approved")
    patient_id = _resolve_patient(pending, user, granted, patient)
    fhir_user = get_fhir_user(user)
    granted = [
        scope
        for scope in granted
        if not (scope == "fhirUser" and not fhir_user)
        and not (scope == "launch/encounter" and not pending.encounter)
        and not (scope == "launch/patient" and not patient_id)
    ]
    if "offline_access" in granted:
        refresh_access = LaunchContext.ACCESS_OFFLINE
    elif "online_access" in granted:
        refresh_access = LaunchContext.ACCESS_ONLINE
    else:
        refresh_access = LaunchContext.ACCESS_NONE
    if not request.session.session_key:
        request.session.save()
    credentials = {
        "client_id": pending.client_id,
        "redirect_uri": pending.redirect_uri,
        "response_type": "code",
        "state": pending.state,
        "code_challenge": pending.code_challenge,
        "code_challenge_method": pending.code_challenge_method,
        "smart_launch": {
            "patient": patient_id,
            "encounter": pending.encounter,
            "fhir_context": pending.fhir_context,
            "fhir_user": fhir_user,
            "need_patient_banner": pending.need_patient_banner,
            "refresh_access": refresh_access,
            "session_key": request.session.session_key or "",
        },
    }
    if pending.nonce:
        credentials["nonce"] = pending.nonce
    if pending.claims:
        credentials["claims"] = pending.claims
    with transaction.atomic():
        if pending.launch_id is not None:
            try:
                do_consume_launch(pending.launch_id, user)
            except InvalidLaunch as error:
                raise AuthorizationError("invalid_request", str(error)) from None
        uri = _create_code_redirect(request, granted, credentials)
        if remember:
            RememberedApproval.objects.update_or_create(
                user=user,
                application=_application(pending.client_id),
                request_key=_request_key(pending.scopes),
                defaults={
                    "requested_scopes": " ".join(pending.scopes),
                    "granted_scopes": " ".join(granted),
                },
            )
    do_forget_pending(request.session, pending.id)
    audit.record_consent(
        "C",
        user,
        pending.client_id,
        app_name=pending.app_name,
        scopes=granted,
        patient=patient_id or None,
        fhir_user=fhir_user or None,
    )
    return uri


def do_deny(request, pending, description="The user denied access"):
    """The redirect URL telling the app the person said no (`access_denied`); audited."""
    do_forget_pending(request.session, pending.id)
    audit.record_consent(
        "E",
        request.user,
        pending.client_id,
        app_name=pending.app_name,
        scopes=pending.scopes,
        patient=pending.patient or None,
        outcome=audit.MINOR_FAILURE,
        outcome_desc=description,
    )
    return error_redirect_url(pending.redirect_uri, "access_denied", description, pending.state)


def error_redirect_url(redirect_uri, error, description, state):
    """`redirect_uri` with RFC 6749 §4.1.2.1 error parameters, `state` unchanged, and `iss`."""
    description = description or ERROR_DESCRIPTIONS.get(error) or error.replace("_", " ")
    params = [("error", error), ("error_description", description)]
    if state is not None:
        params.append(("state", state))
    if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
        params.append(("iss", oauth2_settings.OIDC_ISS_ENDPOINT))
    return add_params_to_uri(redirect_uri, params)


def _resolve_patient(pending, user, granted, picked):
    if pending.patient:
        return pending.patient
    if not needs_patient(granted):
        return ""
    own = get_own_patient(user)
    if own:
        return own
    if picked and patient_exists(picked):
        return picked
    raise PatientRequired()


def patient_exists(patient_id):
    from fhir_api.models import Resource

    return Resource.objects.filter(
        resource_type="Patient", fhir_id=patient_id, deleted=False
    ).exists()


def _application(client_id):
    from oauth2_provider.models import get_application_model

    return get_application_model().objects.get(client_id=client_id)


def _create_code_redirect(request, scopes, credentials):
    """Have DOT/oauthlib make the code (re-validating the request) and return the redirect."""
    from oauth2_provider.exceptions import OAuthToolkitError

    core = _oauthlib_core()
    try:
        uri, _headers, _body, _status = core.create_authorization_response(
            _without_body(request), scopes, credentials, allow=True
        )
    except OAuthToolkitError as error:
        oauth_error = error.oauthlib_error
        raise AuthorizationError(oauth_error.error, oauth_error.description or "") from None
    return uri


def _oauthlib_core():
    """DOT's OAuthLibCore, built once per process like DOT's own views do."""
    from oauth2_provider.views.mixins import OAuthLibMixin

    return OAuthLibMixin.get_oauthlib_core()


def _without_body(request):
    """The request with no form body, so fields of whatever page posted the decision (a
    consent form's checkboxes) are never read as OAuth parameters."""
    clean = copy.copy(request)
    clean.POST = QueryDict()
    clean.method = "GET"
    return clean
