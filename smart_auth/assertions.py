"""Client assertions: an app authenticating with a JWT signed by its private key
(`private_key_jwt`, RFC 7523 §2.2 and §3, SMART App Launch "client-confidential-asymmetric"
and Backend Services).

`verify_client_assertion` is the whole check, a plain function the validator calls for the
token, revocation and introspection endpoints. Every failure raises `InvalidAssertion`,
whose message names the check that failed; the endpoints answer it as `invalid_client`.

A `jti` may be used once (RFC 7523 §3 item 7, SMART SHALL): `UsedAssertion` rows, unique by
client and jti, are kept until the assertion's `exp` plus the leeway. The row is inserted in
a savepoint, so of two requests racing with one assertion the database lets exactly one
through. Expired rows are purged by about one request in `PURGE_ONE_IN`, so the table stays
near the number of assertions of the last few minutes without a scheduled job.
"""

import hashlib
import secrets
from contextlib import nullcontext
from datetime import UTC, datetime

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import get_application_model

from . import jwks
from .clients import get_app
from .conf import absolute_url
from .jwks import ALGORITHMS
from .models import UsedAssertion

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Seconds of clock skew allowed on exp, nbf and iat (Inferno sets exp = its clock + 300 s).
LEEWAY = 60
# An assertion may live at most this long (SMART: exp no more than five minutes ahead).
MAX_LIFETIME = 300
MAX_JTI_LENGTH = 255
PURGE_ONE_IN = 100


class InvalidAssertion(Exception):
    """A client assertion that does not authenticate its client; the message says why."""


def token_endpoint_url():
    """The `aud` an assertion must carry: the token endpoint, exactly as discovery lists it."""
    return absolute_url("smart_auth:token")


def verify_client_assertion(assertion_type, assertion, *, client_id=None):
    """The active app that signed `assertion`, or InvalidAssertion.

    `client_id`: the request's client_id parameter, if it sent one; it must name the same app.
    Checks run cheapest first, and the jti is recorded only once the signature holds, so
    nobody but the key holder can use up an app's jti values.
    """
    if assertion_type != JWT_BEARER:
        raise InvalidAssertion(f"client_assertion_type must be {JWT_BEARER}")
    if not assertion:
        raise InvalidAssertion("client_assertion is required")
    header, unverified = _unverified_parts(assertion)
    alg, kid = _check_header(header)
    app = _load_app(_claimed_issuer(unverified, client_id))
    jku = header.get("jku")
    if jku is not None and jku != app.jwks_uri:
        raise InvalidAssertion("client_assertion jku must be the client's registered jwks_uri")
    try:
        key = jwks.find_key(app, kid, alg)
    except jwks.JwksError as error:
        raise InvalidAssertion(str(error)) from None
    claims = _verified_claims(assertion, key, alg, kid)
    _check_lifetime(claims)
    record_jti(app.client_id, claims["jti"], claims["exp"])
    return app


def _unverified_parts(assertion):
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidAssertion("client_assertion is not a well-formed JWT") from None
    return header, claims


def _check_header(header):
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidAssertion(
            f"client_assertion alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidAssertion("client_assertion header must name the signing key (kid)")
    return alg, kid


def _claimed_issuer(claims, client_id):
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidAssertion("client_assertion iss (the client id) is required")
    if claims.get("sub") != issuer:
        raise InvalidAssertion("client_assertion sub must equal iss (the client id)")
    if client_id is not None and client_id != issuer:
        raise InvalidAssertion("client_id does not match the client_assertion iss")
    return issuer


def _load_app(client_id):
    SmartApp = get_application_model()
    app = get_app(client_id)
    if app is None:
        raise InvalidAssertion(f"client_assertion iss {client_id!r} is not a registered client")
    if not app.is_active:
        raise InvalidAssertion(f"client {client_id} is inactive")
    if app.token_endpoint_auth_method != SmartApp.AUTH_PRIVATE_KEY_JWT:
        raise InvalidAssertion(
            f"client {client_id} is registered for {app.token_endpoint_auth_method}, "
            "not private_key_jwt"
        )
    return app


def _verified_claims(assertion, key, alg, kid):
    audience = token_endpoint_url()
    try:
        return jwt.decode(
            assertion,
            key,
            algorithms=[alg],
            audience=audience,
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.InvalidSignatureError:
        raise InvalidAssertion(
            f"client_assertion signature does not verify with key {kid}"
        ) from None
    except jwt.ExpiredSignatureError:
        raise InvalidAssertion("client_assertion has expired (exp)") from None
    except jwt.MissingRequiredClaimError as error:
        if error.claim == "aud":
            raise InvalidAssertion(f"client_assertion aud must be {audience}") from None
        raise InvalidAssertion(f"client_assertion {error.claim} is required") from None
    except jwt.InvalidAudienceError:
        raise InvalidAssertion(f"client_assertion aud must be {audience}") from None
    except jwt.ImmatureSignatureError:
        raise InvalidAssertion("client_assertion is not valid yet (nbf or iat)") from None
    except jwt.PyJWTError as error:
        raise InvalidAssertion(f"client_assertion is invalid: {error}") from None


def _check_lifetime(claims):
    if claims["exp"] - datetime.now(UTC).timestamp() > MAX_LIFETIME + LEEWAY:
        raise InvalidAssertion(f"client_assertion exp may be at most {MAX_LIFETIME} seconds ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidAssertion(
            f"client_assertion jti must be a string of 1 to {MAX_JTI_LENGTH} characters"
        )


def record_jti(client_id, jti, exp):
    """Remember that `client_id` used `jti`, or InvalidAssertion if it already did.

    A row whose assertion has expired no longer blocks its jti: the same value may come back
    in a new assertion (RFC 7523 only forbids reuse while the first could be valid).
    """
    checksum = hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()
    expires = datetime.fromtimestamp(exp + LEEWAY, UTC)
    now = timezone.now()
    # Inside a transaction a clash must roll back to a savepoint; outside one (the token
    # endpoint's client_credentials) the INSERT stands alone and a transaction would only add
    # BEGIN and COMMIT.
    inside = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if inside else nullcontext():
            UsedAssertion.objects.create(checksum=checksum, expires=expires)
    except IntegrityError:
        reused = UsedAssertion.objects.filter(checksum=checksum, expires__lte=now).update(
            expires=expires
        )
        if not reused:
            raise InvalidAssertion("client_assertion jti was already used") from None
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        purge_used_assertions(now)


def purge_used_assertions(now=None):
    """Delete the replay records of assertions that have expired; returns how many."""
    deleted, _ = UsedAssertion.objects.filter(expires__lte=now or timezone.now()).delete()
    return deleted
