"""DRF authentication classes: SMART bearer tokens for the FHIR API, admin JWTs and API keys
for the client registry.

`SmartBearerAuthentication` (in DEFAULT_AUTHENTICATION_CLASSES) turns a SMART access token into
`(user, AccessPolicy)`, built from the token's scopes by `policies.py`: the FHIR API knows
nothing of OAuth and only enforces the policy. The JWT is checked offline (signature with a
cached key, `exp`, `iss`, `aud` = the FHIR base) and then against the database in one indexed
query, so a revoked token (its row deleted) stops at once.
"""

import hashlib

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .api_keys import access_api_key
from .policies import get_access_policy
from .tokens import InvalidToken, default_token_signer

AccessToken = get_access_token_model()
REVOKED = "The token was revoked or has expired"


def _bearer_token(request):
    """The token of an `Authorization: Bearer …` header, None without one."""
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != b"bearer":
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("Malformed Bearer authorization header")
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Malformed Bearer token") from None


def access_live_token(token):
    """The stored AccessToken row of `token` if it is neither revoked nor expired, else None."""
    checksum = hashlib.sha256(token.encode()).hexdigest()
    return (
        AccessToken.objects.select_related("user")
        .filter(
            token_checksum=checksum,
            expires__gt=timezone.now(),
            application__is_active=True,
        )
        .first()
    )


class SmartBearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer <SMART access token>` → (user, AccessPolicy)."""

    www_authenticate_realm = "fhir"

    def authenticate(self, request):
        token = _bearer_token(request)
        if token is None:
            return None
        try:
            claims = default_token_signer.verify_access_token(token)
        except InvalidToken as error:
            request._smart_token_error = str(error)
            raise exceptions.AuthenticationFailed(str(error)) from None
        row = access_live_token(token)
        if row is None or (row.user is not None and not row.user.is_active):
            request._smart_token_error = REVOKED
            raise exceptions.AuthenticationFailed(REVOKED)
        user = row.user if row.user is not None else AnonymousUser()
        return user, get_access_policy(claims, has_user=row.user is not None)

    def authenticate_header(self, request):
        challenge = f'Bearer realm="{self.www_authenticate_realm}"'
        error = getattr(request, "_smart_token_error", None)
        if error:
            description = error.replace('"', "'")
            challenge += f', error="invalid_token", error_description="{description}"'
        return challenge


class AdminJWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <admin JWT from POST /auth/token>` → the staff user.

    A SMART access token fails here on its audience, as an admin JWT does at the FHIR API.
    """

    def authenticate(self, request):
        token = _bearer_token(request)
        if token is None:
            return None
        try:
            claims = default_token_signer.verify_admin_token(token)
        except InvalidToken as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
        if user is None or not user.is_staff:
            raise exceptions.AuthenticationFailed("The token's user may not manage apps")
        return user, claims

    def authenticate_header(self, request):
        return 'Bearer realm="smart-apps"'


class ApiKeyAuthentication(BaseAuthentication):
    """`X-API-Key: <key>` created in Django admin → the key's staff user."""

    def authenticate(self, request):
        key = request.headers.get("X-API-Key")
        if key is None:
            return None
        row = access_api_key(key)
        if row is None or not row.user.is_active or not row.user.is_staff:
            raise exceptions.AuthenticationFailed("Invalid API key")
        return row.user, row
