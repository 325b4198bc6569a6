"""Launch context: EHR launch handles, and what an authorization's context puts in tokens.

An EHR launch starts in the EHR: a person presses Launch on a patient's page (the consent app)
or the EHR itself calls POST /smart/launch (`launch_api`). Both check the context with
`clean_launch_context` and make a handle with `do_create_launch`, and the browser is sent to
the app's launch URI with `iss` and the opaque `launch` value (`get_launch_url`). The app sends
the value back to /smart/authorize, where `access_launch` checks it; it is consumed when the
person approves (`do_consume_launch`). A handle is single-use, lives SMART["LAUNCH_LIFETIME"]
seconds, belongs to one app and, when a person launched it, to that person. Every refusal says
which rule failed (the `LAUNCH_*` descriptions below), as the app's developer needs to know.
"""

import hashlib
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from fhir.resources.R4B.identifier import Identifier
from oauthlib.common import add_params_to_uri
from pydantic import ValidationError

from fhir_api.models import CompartmentMembership, Resource
from fhir_api.resource_types import RESOURCE_TYPE_SET
from fhir_api.validation import ID_PATTERN

from .conf import absolute_url, get_fhir_base
from .models import FhirUser, LaunchHandle

# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_HANDLE_RE = re.compile(r"[A-Za-z0-9_-]{43}")

INVALID_LAUNCH = "Invalid launch parameter"
LAUNCH_MALFORMED = f"{INVALID_LAUNCH}: malformed (not a launch value this server issues)"
LAUNCH_UNKNOWN = f"{INVALID_LAUNCH}: unknown launch"
LAUNCH_OTHER_APP = f"{INVALID_LAUNCH}: issued for another app"
LAUNCH_USED = f"{INVALID_LAUNCH}: already used (each launch works once; launch the app again)"
LAUNCH_EXPIRED = f"{INVALID_LAUNCH}: expired (a launch lasts a few minutes; launch the app again)"
LAUNCH_OTHER_USER = f"{INVALID_LAUNCH}: opened by another user"
LAUNCH_OTHER_PATIENT = (
    f"{INVALID_LAUNCH}: for another patient's record (a patient shares only their own)"
)

MAX_FHIR_CONTEXT = 20
_FHIR_CONTEXT_KEYS = ("reference", "canonical", "identifier", "type", "role")
_MAX_TEXT = 1000
# RFC 3986 scheme, then anything without spaces.
_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")


class InvalidLaunch(Exception):
    """The `launch` value is malformed, unknown, expired, used, or another app's or person's."""


class InvalidLaunchContext(ValueError):
    """A launch names a patient, encounter or fhirContext this server cannot give an app.

    `field` is the launch request's field at fault (`patient`, `encounter`, `fhirContext`).
    """

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


# --- Making a launch ------------------------------------------------------------------------


def clean_launch_context(patient, encounter="", fhir_context=None):
    """The launch's fhirContext, checked; InvalidLaunchContext if any part is unusable.

    The patient must exist, the encounter must exist and be that patient's, and fhirContext
    must follow SMART App Launch 2.2 (`check_fhir_context`). Checked when the launch is made,
    so an app is never handed context that points nowhere.
    """
    if not patient or not ID_PATTERN.fullmatch(patient) or not _exists("Patient", patient):
        raise InvalidLaunchContext("patient", f"There is no Patient with id {patient!r}")
    if encounter:
        if not ID_PATTERN.fullmatch(encounter) or not _exists("Encounter", encounter):
            raise InvalidLaunchContext("encounter", f"There is no Encounter with id {encounter!r}")
        if patient not in _compartment_owners("Encounter", encounter):
            raise InvalidLaunchContext(
                "encounter", f"Encounter/{encounter} is not an encounter of Patient/{patient}"
            )
    return check_fhir_context([] if fhir_context is None else fhir_context, patient)


def check_fhir_context(items, patient):
    """`items` as a SMART 2.2 fhirContext array, or InvalidLaunchContext naming the fault.

    Each item is an object with at least one of `reference` (a relative `Type/id` of a
    resource on this server, in `patient`'s compartment when it belongs to one), `canonical`
    (an absolute URL, optionally `|version`) or `identifier` (a FHIR Identifier with a value),
    and optionally `type` (a resource type, matching the reference's) and `role` (an absolute
    URI, or "launch", the one relative role SMART defines; never empty). Patient and Encounter
    have their own launch parameters, so they appear here only with another role. Any other
    member is refused rather than passed on to the app.
    """
    if not isinstance(items, list):
        raise InvalidLaunchContext("fhirContext", "fhirContext must be an array of objects")
    if len(items) > MAX_FHIR_CONTEXT:
        raise InvalidLaunchContext(
            "fhirContext", f"fhirContext may hold at most {MAX_FHIR_CONTEXT} items"
        )
    return [_check_fhir_context_item(item, index, patient) for index, item in enumerate(items)]


def _check_fhir_context_item(item, index, patient):
    def fault(message):
        return InvalidLaunchContext("fhirContext", f"fhirContext[{index}]: {message}")

    if not isinstance(item, dict):
        raise fault("must be an object")
    unknown = sorted(set(item) - set(_FHIR_CONTEXT_KEYS))
    if unknown:
        raise fault(f"unknown member {', '.join(map(repr, unknown))}")
    if not any(key in item for key in ("reference", "canonical", "identifier")):
        raise fault("needs one of reference, canonical or identifier")
    for key in ("reference", "canonical", "type", "role"):
        if key in item and not (isinstance(item[key], str) and 0 < len(item[key]) <= _MAX_TEXT):
            raise fault(f"{key} must be a non-empty string")
    resource_type = _check_type(item, fault)
    if "reference" in item:
        resource_type = _check_reference(item, patient, fault)
    if "canonical" in item and not _is_absolute_uri(item["canonical"]):
        raise fault("canonical must be an absolute URL")
    if "identifier" in item:
        _check_identifier(item["identifier"], fault)
    role = item.get("role", "launch")
    if role != "launch" and not _is_absolute_uri(role):
        raise fault('role must be an absolute URI (or "launch")')
    if resource_type in ("Patient", "Encounter") and role == "launch":
        raise fault(
            f"{resource_type} goes in the {resource_type.lower()} parameter; in fhirContext "
            'it needs a role other than "launch"'
        )
    return dict(item)


def _check_type(item, fault):
    resource_type = item.get("type")
    if resource_type is not None and resource_type not in RESOURCE_TYPE_SET:
        raise fault(f"type {resource_type!r} is not a FHIR resource type")
    return resource_type


def _check_reference(item, patient, fault):
    """The reference's resource type, once it is a relative reference to a resource the
    launch's patient may be shown."""
    resource_type, _, fhir_id = item["reference"].partition("/")
    if resource_type not in RESOURCE_TYPE_SET or not ID_PATTERN.fullmatch(fhir_id):
        raise fault("reference must be a relative reference Type/id")
    if item.get("type", resource_type) != resource_type:
        raise fault(f"type {item['type']!r} differs from the reference's type")
    if not _exists(resource_type, fhir_id):
        raise fault(f"{item['reference']} does not exist")
    owners = _compartment_owners(resource_type, fhir_id)
    if resource_type != "Patient" and owners and patient not in owners:
        raise fault(f"{item['reference']} belongs to another patient's record")
    return resource_type


def _check_identifier(identifier, fault):
    if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
        raise fault("identifier must be a FHIR Identifier object with a value")
    if "system" in identifier and not _is_absolute_uri(str(identifier["system"])):
        raise fault("identifier.system must be an absolute URI")
    try:
        Identifier.model_validate(identifier)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise fault(f"identifier.{where}: {first['msg']}") from None


def _is_absolute_uri(value):
    return bool(_ABSOLUTE_URI_RE.fullmatch(value))


def _exists(resource_type, fhir_id):
    return Resource.objects.filter(
        resource_type=resource_type, fhir_id=fhir_id, deleted=False
    ).exists()


def _compartment_owners(resource_type, fhir_id):
    """Ids of the patients whose record (R4 Patient compartment) holds the resource."""
    return set(
        CompartmentMembership.objects.filter(
            resource__resource_type=resource_type, resource__fhir_id=fhir_id
        ).values_list("patient_id", flat=True)
    )


def do_create_launch(
    user, application, *, patient="", encounter="", fhir_context=(), need_patient_banner=True
):
    """A new launch handle for `application` with this context; `user` is the person who
    launched it, or None when the EHR asked through the API (any person may then use it).

    The context must already be checked (`clean_launch_context`). Only the handle's SHA-256
    is stored. `need_patient_banner` defaults to True: our pages open the app in a new page,
    not framed by a banner of ours.
    """
    handle = secrets.token_urlsafe(32)
    LaunchHandle.objects.create(
        checksum=_checksum(handle),
        application=application,
        user=user,
        patient=patient,
        encounter=encounter,
        fhir_context=list(fhir_context),
        need_patient_banner=need_patient_banner,
        expires=timezone.now() + timedelta(seconds=settings.SMART["LAUNCH_LIFETIME"]),
    )
    return handle


def get_launch_url(application, handle):
    """The app's launch URI with `iss` (the FHIR base, exactly as `aud` must be) and `launch`."""
    return add_params_to_uri(application.launch_uri, [("iss", get_fhir_base()), ("launch", handle)])


# --- Using a launch ---------------------------------------------------------------------------


def _checksum(handle):
    return hashlib.sha256(handle.encode()).hexdigest()


def access_launch(handle, application):
    """The usable LaunchHandle for `handle` sent by `application`, else InvalidLaunch saying
    why. Whether the person may use it is checked when they approve (`do_consume_launch`)."""
    if not isinstance(handle, str) or not _HANDLE_RE.fullmatch(handle):
        raise InvalidLaunch(LAUNCH_MALFORMED)
    launch = LaunchHandle.objects.filter(checksum=_checksum(handle)).first()
    if launch is None:
        raise InvalidLaunch(LAUNCH_UNKNOWN)
    if launch.application_id != application.pk:
        raise InvalidLaunch(LAUNCH_OTHER_APP)
    _check_usable(launch, timezone.now())
    return launch


def _check_usable(launch, now):
    if launch.consumed_at is not None:
        raise InvalidLaunch(LAUNCH_USED)
    if launch.expires <= now:
        raise InvalidLaunch(LAUNCH_EXPIRED)


def check_launch_user(launch_user_id, user):
    """InvalidLaunch if a launch a person opened reached another person's session."""
    if launch_user_id is not None and launch_user_id != user.pk:
        raise InvalidLaunch(LAUNCH_OTHER_USER)


def do_consume_launch(launch_id, user):
    """Mark the launch used by `user`; InvalidLaunch saying why if it cannot be.

    One UPDATE with every condition in its WHERE clause, so two approvals racing for the same
    handle cannot both succeed; only a refusal reads the row again, to say which rule failed.
    A launch made through the API (no user) may be used by whoever approves first.
    """
    now = timezone.now()
    updated = LaunchHandle.objects.filter(
        Q(user=user) | Q(user__isnull=True),
        pk=launch_id,
        consumed_at__isnull=True,
        expires__gt=now,
    ).update(consumed_at=now)
    if updated:
        return
    launch = LaunchHandle.objects.filter(pk=launch_id).first()
    if launch is None:
        raise InvalidLaunch(LAUNCH_UNKNOWN)
    _check_usable(launch, now)
    raise InvalidLaunch(LAUNCH_OTHER_USER)


# --- What a launch puts in tokens -------------------------------------------------------------


def get_fhir_user(user):
    """`Patient/123`-style reference of the person, or "" if they have no FHIR identity."""
    link = FhirUser.objects.filter(user=user).only("resource_type", "fhir_id").first()
    return link.reference if link else ""


def context_claims(context):
    """Claims of the launch context that go into every access token JWT."""
    claims = {}
    if context.patient:
        claims["patient"] = context.patient
    if context.encounter:
        claims["encounter"] = context.encounter
    if context.fhir_user:
        claims["fhirUser"] = context.fhir_user
    if context.fhir_context:
        claims["fhirContext"] = context.fhir_context
    return claims


def token_response_fields(context, scopes):
    """SMART launch-context parameters added to a token response for granted `scopes`."""
    granted = set(scopes.split() if isinstance(scopes, str) else scopes)
    fields = {
        "need_patient_banner": context.need_patient_banner,
        "smart_style_url": absolute_url("smart_auth:style"),
    }
    # The same context the access token carries, but fhirUser only when identity was granted.
    fields |= {k: v for k, v in context_claims(context).items() if k != "fhirUser"}
    if context.fhir_user and granted & {"fhirUser", "openid"}:
        fields["fhirUser"] = context.fhir_user
    return fields
