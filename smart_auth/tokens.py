"""JWTs this server signs and checks: SMART access tokens and admin tokens.

Both are RS256 with the active key from `keys` and carry a `kid`. They differ by audience: a
SMART access token's `aud` is the FHIR base URL, an admin token's is the registry's
(SMART["ADMIN_AUDIENCE"]), so neither is accepted where the other belongs. id_tokens are
signed by django-oauth-toolkit with the same key (SmartApp.jwk_key).

`TokenSigner` is one class with a module-level default (the shape of Django's
`default_token_generator`), so a test or subclass can swap it.
"""

import threading
import time
import uuid
from collections import OrderedDict

import jwt
from django.conf import settings

from . import keys
from .conf import get_admin_audience, get_fhir_base, get_issuer
from .launch import context_claims

ALGORITHM = "RS256"
# Seconds of clock skew tolerated when checking exp/iat/nbf.
LEEWAY = 30


class InvalidToken(Exception):
    """A JWT that is malformed, badly signed, expired, or meant for another audience."""


class VerifiedTokens:
    """Tokens whose signature, issuer and audience checked out, in this process: an app sends
    the same bearer token with each request, and a dict lookup costs less than the RS256
    verification (about 6% of a FHIR read's time under load). Only what does not change with
    time is remembered; expiry and the key's publication are checked again on every use.
    Bounded: the least recently used tokens are forgotten first."""

    def __init__(self, size=2048):
        self.size = size
        self._lock = threading.Lock()
        self._tokens = OrderedDict()  # (token, (audience, issuer)) -> (kid, claims)

    def get(self, token, checks):
        with self._lock:
            found = self._tokens.get((token, checks))
            if found is not None:
                self._tokens.move_to_end((token, checks))
            return found

    def add(self, token, checks, kid, claims):
        with self._lock:
            self._tokens[(token, checks)] = (kid, claims)
            if len(self._tokens) > self.size:
                self._tokens.popitem(last=False)

    def clear(self):
        with self._lock:
            self._tokens.clear()


class TokenSigner:
    def __init__(self):
        self.verified = VerifiedTokens()

    def sign(self, claims):
        key = keys.get_signing_key()
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token, *, audience):
        """The claims of `token` if its signature, issuer, audience and lifetime check out."""
        checks = (audience, get_issuer())  # what a remembered verification was made against
        remembered = self.verified.get(token, checks)
        if remembered is not None:
            kid, claims = remembered
            if keys.key_ring.verification_key(kid) is not None:  # else: checked below, refused
                if claims["exp"] <= time.time() - LEEWAY:  # as PyJWT decides it
                    raise InvalidToken("The token has expired")
                return dict(claims)
        kid, claims = self._verify(token, audience)
        self.verified.add(token, checks, kid, claims)
        return dict(claims)

    def _verify(self, token, audience):
        """(kid, claims), after checking the signature, issuer, audience and lifetime."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("The token is not a JWT") from error
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("The token is not signed RS256")
        kid = header.get("kid")
        public_key = keys.key_ring.verification_key(kid)
        if public_key is None:
            raise InvalidToken("The token was not signed by a key of this server")
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=get_issuer(),
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("The token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("The token is not meant for this server") from error
        except jwt.PyJWTError as error:
            raise InvalidToken("The token is invalid") from error
        return kid, claims

    # --- SMART access tokens --------------------------------------------------------------

    def access_token_claims(self, *, user, client_id, scopes, expires_in, context=None):
        now = int(time.time())
        claims = {
            "iss": get_issuer(),
            "sub": str(user.pk) if user is not None else client_id,
            "aud": get_fhir_base(),
            "iat": now,
            "exp": now + int(expires_in),
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": " ".join(scopes),
        }
        context = context or {}
        for claim in ("patient", "encounter", "fhirUser"):
            if context.get(claim):
                claims[claim] = context[claim]
        if context.get("fhirContext"):
            claims["fhirContext"] = context["fhirContext"]
        return claims

    def verify_access_token(self, token):
        return self.verify(token, audience=get_fhir_base())

    # --- Admin tokens (POST /auth/token) ---------------------------------------------------

    def make_admin_token(self, user):
        """(token, expires_in) for a staff user of the client registry."""
        lifetime = settings.SMART["ADMIN_TOKEN_LIFETIME"]
        now = int(time.time())
        claims = {
            "iss": get_issuer(),
            "sub": str(user.pk),
            "aud": get_admin_audience(),
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        return self.sign(claims), lifetime

    def verify_admin_token(self, token):
        return self.verify(token, audience=get_admin_audience())


default_token_signer = TokenSigner()


def generate_access_token(request):
    """OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"]: oauthlib calls it for every access token.

    By then the validator has put the granted scopes and the authorization's launch context
    on the oauthlib request (`validate_code`, `validate_refresh_token`).
    """
    context = getattr(request, "smart_context", None)
    claims = default_token_signer.access_token_claims(
        user=request.user,
        client_id=request.client.client_id,
        scopes=request.scopes or [],
        expires_in=request.expires_in,
        context=context_claims(context) if context is not None else None,
    )
    return default_token_signer.sign(claims)
