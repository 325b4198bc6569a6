"""Launch context: EHR launch handles, and what an authorization's context puts in tokens.

An EHR launch starts in the EHR (here: `do_create_launch`, called by the launch page), which
opens the app's launch URI with `iss` and an opaque `launch` handle. The app sends the handle
back to /smart/authorize; the handle is checked there (`access_launch`) and consumed when the
person approves (`do_consume_launch`): single-use, short-lived, bound to one app and one user.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .conf import absolute_url, get_fhir_base
from .models import FhirUser, LaunchHandle


class InvalidLaunch(Exception):
    """The `launch` value is unknown, expired, used, or belongs to another app or person."""


def _checksum(handle):
    return hashlib.sha256(handle.encode()).hexdigest()


def do_create_launch(user, application, *, patient="", encounter="", need_patient_banner=False):
    """A new launch handle for `application`, opened by `user` with this patient in context."""
    handle = secrets.token_urlsafe(32)
    LaunchHandle.objects.create(
        checksum=_checksum(handle),
        application=application,
        user=user,
        patient=patient,
        encounter=encounter,
        need_patient_banner=need_patient_banner,
        expires=timezone.now() + timedelta(seconds=settings.SMART["LAUNCH_LIFETIME"]),
    )
    return handle


def get_launch_url(application, handle):
    """The app's launch URI with `iss` (the FHIR base) and `launch`, as the EHR opens it."""
    from oauthlib.common import add_params_to_uri

    return add_params_to_uri(application.launch_uri, [("iss", get_fhir_base()), ("launch", handle)])


def access_launch(handle, application):
    """The unexpired, unused LaunchHandle for `handle` and `application`, else InvalidLaunch."""
    if not handle or len(handle) > 200:
        raise InvalidLaunch("Invalid launch parameter: malformed")
    launch = LaunchHandle.objects.filter(checksum=_checksum(handle)).first()
    if launch is None or launch.application_id != application.pk:
        raise InvalidLaunch("Invalid launch parameter: unknown launch")
    if launch.consumed_at is not None:
        raise InvalidLaunch("Invalid launch parameter: the launch was already used")
    if launch.expires <= timezone.now():
        raise InvalidLaunch("Invalid launch parameter: the launch has expired")
    return launch


def do_consume_launch(launch_id, user):
    """Mark the launch used by `user`; InvalidLaunch if it was used, expired or is not theirs.

    One UPDATE with the conditions in its WHERE clause, so two approvals racing for the same
    handle cannot both succeed.
    """
    now = timezone.now()
    updated = LaunchHandle.objects.filter(
        pk=launch_id, user=user, consumed_at__isnull=True, expires__gt=now
    ).update(consumed_at=now)
    if updated != 1:
        raise InvalidLaunch("Invalid launch parameter: expired, used, or opened by someone else")


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
