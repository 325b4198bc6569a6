"""Token introspection (RFC 7662, SMART App Launch 2.2 "Token Introspection"), and who called.

`introspection(token, client)` describes a token the way its token response did: `active`,
`scope`, `client_id`, `exp`, `iat`, `iss` and `sub` (the id_token's: our issuer and the user's
id), `token_type`, and the launch context (`patient`, `encounter`, `fhirContext`,
`need_patient_banner`, `smart_style_url`, and `fhirUser` as the absolute URL the id_token
carries). A token that is unknown, expired, revoked, not ours, or another client's is
exactly `{"active": false}`: the answer never says which.
"""

import base64
import hashlib
from urllib.parse import unquote_plus

import jwt
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from .conf import get_fhir_base
from .launch import token_response_fields
from .models import LaunchContext
from .tokens import InvalidToken, default_token_signer

AccessToken = get_access_token_model()
INACTIVE = {"active": False}


def introspection(token, client=None):
    """The RFC 7662 answer for `token` as `client` (a SmartApp) may see it: only its own
    tokens. `client=None` is a resource server, which may see any token."""
    row = _live_token_row(token)
    if row is None or (client is not None and row.application_id != client.pk):
        return dict(INACTIVE)
    try:
        claims = default_token_signer.verify_access_token(token)
    except InvalidToken:
        return dict(INACTIVE)
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
    context = _launch_context(row)
    if context is not None:
        data |= token_response_fields(context, row.scope)
    else:
        data |= {k: claims[k] for k in ("patient", "encounter", "fhirContext") if k in claims}
    if "fhirUser" in data:
        # Absolute, as in the id_token (SMART: the id_token's fhirUser SHOULD be included).
        data["fhirUser"] = f"{get_fhir_base()}/{data['fhirUser']}"
    return data


def _live_token_row(token):
    """The stored access token, if it is live: not revoked (the row exists), not expired, of
    an active app and, when a person approved it, of an active user."""
    if not isinstance(token, str) or not token or len(token) > 10_000:
        return None
    row = (
        AccessToken.objects.select_related("application", "user", "source_refresh_token")
        .filter(token_checksum=hashlib.sha256(token.encode()).hexdigest())
        .first()
    )
    if row is None or row.application is None or row.expires <= timezone.now():
        return None
    if not row.application.is_active or (row.user is not None and not row.user.is_active):
        return None
    return row


def _launch_context(row):
    """The authorization a user token came from: its code's first token, or the refresh
    chain (`token_family`) of a refreshed one. None for tokens without a user."""
    if row.user_id is None:
        return None
    match = Q(access_token=row)
    if row.source_refresh_token is not None and row.source_refresh_token.token_family:
        match |= Q(family=row.source_refresh_token.token_family)
    return LaunchContext.objects.filter(match).first()


def caller_client_id(request):
    """The client id the caller of a token endpoint says it is, for the audit trail: from
    Basic credentials, a client assertion's `iss` (unverified: authentication checks it), or
    the `client_id` form field. None if it names none, or none that could exist (a NUL byte,
    which no text column may hold)."""
    claimed = _claimed_client_id(request)
    return claimed if claimed is not None and "\x00" not in claimed else None


def _claimed_client_id(request):
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote_plus(decoded.split(":", 1)[0])
    assertion = request.POST.get("client_assertion")
    if assertion:
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return issuer if isinstance(issuer, str) else None
    return request.POST.get("client_id")
