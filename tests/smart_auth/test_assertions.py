"""Client assertions (RFC 7523, SMART Backend Services): `verify_client_assertion` accepts an
assertion signed by the app's registered key and refuses every other one, naming the check
that failed. Real RSA and EC keys, signed with pyjwt."""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from smart_auth.assertions import (
    JWT_BEARER,
    InvalidAssertion,
    purge_used_assertions,
    record_jti,
    token_endpoint_url,
    verify_client_assertion,
)
from smart_auth.models import UsedAssertion
from tests.smart_support import make_app, make_backend_app, public_jwk, sign_assertion, signing_key

pytestmark = pytest.mark.django_db

ALGS = ["RS384", "ES384", "RS256", "ES256"]


@pytest.fixture
def app():
    """A backend service with one key per accepted algorithm, kid = the algorithm's name."""
    keys = [public_jwk(signing_key(alg), alg) for alg in ALGS]
    return make_backend_app(jwks={"keys": keys})


def signed(app, alg="RS384", *, key=None, kid=None, headers=None, **claims):
    return sign_assertion(
        app.client_id, key or signing_key(alg), kid or alg, alg, headers=headers, **claims
    )


def refused(assertion, *, assertion_type=JWT_BEARER, client_id=None):
    with pytest.raises(InvalidAssertion) as error:
        verify_client_assertion(assertion_type, assertion, client_id=client_id)
    return str(error.value)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header, claims, signature=b""):
    """A JWT assembled by hand, as an attacker would, with any header and signature."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signature)


def claims_for(app, **changes):
    now = int(time.time())
    return {
        "iss": app.client_id,
        "sub": app.client_id,
        "aud": token_endpoint_url(),
        "exp": now + 240,
        "jti": f"jti-{time.monotonic_ns()}",
        **changes,
    }


@pytest.mark.parametrize("alg", ALGS)
def test_an_assertion_signed_with_the_registered_key_authenticates_its_app(app, alg):
    assert verify_client_assertion(JWT_BEARER, signed(app, alg)) == app
    assert UsedAssertion.objects.count() == 1


def test_the_client_id_parameter_may_name_the_same_app(app):
    assert verify_client_assertion(JWT_BEARER, signed(app), client_id=app.client_id) == app
    message = refused(signed(app), client_id="someone-else")
    assert message == "client_id does not match the client_assertion iss"


def test_the_assertion_type_must_be_jwt_bearer(app):
    message = refused(signed(app), assertion_type="not_an_assertion_type")
    assert message == f"client_assertion_type must be {JWT_BEARER}"
    assert refused("", assertion_type=JWT_BEARER) == "client_assertion is required"
    assert refused("not a jwt") == "client_assertion is not a well-formed JWT"


def test_alg_none_is_refused(app):
    assertion = forged({"alg": "none", "kid": "RS384"}, claims_for(app))
    assert "alg must be one of RS384, ES384, RS256, ES256, not 'none'" in refused(assertion)


def test_hs256_signed_with_the_public_key_as_secret_is_refused(app):
    """The classic key-confusion attack: the public key (known to all) as an HMAC secret."""
    public_pem = (
        signing_key("RS384")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header, claims = {"alg": "HS256", "kid": "RS384", "typ": "JWT"}, claims_for(app)
    unsigned = forged(header, claims).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    assert "not 'HS256'" in refused(unsigned + "." + b64(signature))
    assert not UsedAssertion.objects.exists()


@pytest.mark.parametrize("alg", ["RS512", "PS256", "PS384"])
def test_other_rsa_algorithms_are_refused(app, alg):
    assertion = signed(app, alg, key=signing_key("RS384"), kid="RS384")
    assert f"not {alg!r}" in refused(assertion)


def test_a_kid_is_required(app):
    assertion = jwt.encode(claims_for(app), signing_key("RS384"), algorithm="RS384")
    assert refused(assertion) == "client_assertion header must name the signing key (kid)"


def test_iss_and_sub_must_both_be_the_client_id(app):
    assert refused(signed(app, iss=None)) == "client_assertion iss (the client id) is required"
    message = refused(signed(app, sub="someone-else"))
    assert message == "client_assertion sub must equal iss (the client id)"


def test_an_unknown_client_is_refused(app):
    message = refused(signed(app, iss="nobody", sub="nobody"))
    assert message == "client_assertion iss 'nobody' is not a registered client"
    assert "not a registered client" in refused(signed(app, iss="a\x00b", sub="a\x00b"))


def test_an_inactive_app_is_refused(app):
    app.is_active = False
    app.save()
    assert refused(signed(app)) == f"client {app.client_id} is inactive"


def test_an_app_registered_for_a_secret_cannot_use_an_assertion(app):
    secret_app, _secret = make_app("Secret app", confidential=True)
    key = signing_key("RS384")
    assertion = sign_assertion(secret_app.client_id, key, "RS384")
    message = refused(assertion)
    assert message == (
        f"client {secret_app.client_id} is registered for client_secret_basic, not private_key_jwt"
    )


def test_a_jku_must_be_the_registered_jwks_uri(app):
    message = refused(signed(app, headers={"jku": "https://attacker.example/jwks.json"}))
    assert message == "client_assertion jku must be the client's registered jwks_uri"


def test_an_unknown_kid_is_refused(app):
    assertion = signed(app, kid="not-registered")
    assert refused(assertion) == "no key with kid 'not-registered' for RS384 in the client's JWKS"


def test_a_kid_whose_key_does_not_fit_the_alg_is_refused(app):
    """ES256 names the P-384 key's kid: the curve does not fit, so no key is found."""
    assertion = signed(app, "ES256", kid="ES384")
    assert refused(assertion) == "no key with kid 'ES384' for ES256 in the client's JWKS"


def test_a_signature_by_another_key_is_refused(app):
    assertion = signed(app, key=signing_key("RS384", name="attacker"))
    assert refused(assertion) == "client_assertion signature does not verify with key RS384"
    assert not UsedAssertion.objects.exists()  # no jti is used up by a forgery


def test_the_audience_must_be_the_token_endpoint(app):
    expected = f"client_assertion aud must be {token_endpoint_url()}"
    assert refused(signed(app, aud="https://other.example/token")) == expected
    assert refused(signed(app, aud=None)) == expected
    # RFC 7519: aud may be a list; one entry must be the token endpoint.
    assert verify_client_assertion(JWT_BEARER, signed(app, aud=["x", token_endpoint_url()]))


def test_expiry_is_required_checked_and_at_most_five_minutes_ahead(app):
    now = int(time.time())
    assert refused(signed(app, exp=None)) == "client_assertion exp is required"
    assert refused(signed(app, exp=now - 120)) == "client_assertion has expired (exp)"
    message = refused(signed(app, exp=now + 600))
    assert message == "client_assertion exp may be at most 300 seconds ahead"
    # Clock skew: a little past exp, or a little more than 300 s ahead, still passes.
    assert verify_client_assertion(JWT_BEARER, signed(app, exp=now - 30))
    assert verify_client_assertion(JWT_BEARER, signed(app, exp=now + 330))


def test_nbf_and_iat_in_the_future_are_refused(app):
    now = int(time.time())
    assert refused(signed(app, nbf=now + 600)) == "client_assertion is not valid yet (nbf or iat)"
    assert refused(signed(app, iat=now + 600)) == "client_assertion is not valid yet (nbf or iat)"


def test_a_jti_is_required_and_bounded(app):
    assert refused(signed(app, jti=None)) == "client_assertion jti is required"
    message = refused(signed(app, jti="x" * 256))
    assert message == "client_assertion jti must be a string of 1 to 255 characters"


def test_a_jti_is_used_once_per_client(app):
    assertion = signed(app, jti="once")
    verify_client_assertion(JWT_BEARER, assertion)
    assert refused(assertion) == "client_assertion jti was already used"
    assert refused(signed(app, "ES384", jti="once")) == "client_assertion jti was already used"
    other = make_backend_app("Other", jwks={"keys": [public_jwk(signing_key("RS384"), "RS384")]})
    assert verify_client_assertion(JWT_BEARER, signed(other, jti="once")) == other


def test_a_jti_may_come_back_once_its_first_assertion_has_expired(app):
    record_jti(app.client_id, "reused", time.time() - 3600)
    assert verify_client_assertion(JWT_BEARER, signed(app, jti="reused")) == app
    assert refused(signed(app, jti="reused")) == "client_assertion jti was already used"


def test_expired_replay_records_are_purged():
    now = timezone.now()
    UsedAssertion.objects.create(checksum="old", expires=now - timedelta(seconds=1))
    UsedAssertion.objects.create(checksum="live", expires=now + timedelta(seconds=300))
    assert purge_used_assertions(now) == 1
    assert list(UsedAssertion.objects.values_list("checksum", flat=True)) == ["live"]


def test_keys_not_meant_for_verification_are_not_used():
    key = signing_key("RS384")
    for members in ({"use": "enc"}, {"key_ops": ["encrypt"]}):
        app = make_backend_app(jwks={"keys": [public_jwk(key, "k1", **members)]})
        assertion = sign_assertion(app.client_id, key, "k1")
        assert refused(assertion) == "no key with kid 'k1' for RS384 in the client's JWKS"
    app = make_backend_app(jwks={"keys": [public_jwk(key, "k1", use="sig", key_ops=["verify"])]})
    assert verify_client_assertion(JWT_BEARER, sign_assertion(app.client_id, key, "k1")) == app


def test_a_key_that_declares_another_alg_is_not_used():
    key = signing_key("RS384")
    app = make_backend_app(jwks={"keys": [public_jwk(key, "k1", alg="RS256")]})
    message = refused(sign_assertion(app.client_id, key, "k1", "RS384"))
    assert message == "no key with kid 'k1' for RS384 in the client's JWKS"
    assert verify_client_assertion(JWT_BEARER, sign_assertion(app.client_id, key, "k1", "RS256"))


def test_two_keys_with_one_kid_are_refused_rather_than_guessed():
    first, second = signing_key("RS384"), signing_key("RS384", name="second")
    app = make_backend_app(jwks={"keys": [public_jwk(first, "k1"), public_jwk(second, "k1")]})
    message = refused(sign_assertion(app.client_id, first, "k1"))
    assert message == "several keys with kid 'k1' fit RS384 in the client's JWKS"


def test_an_app_without_keys_is_refused():
    app = make_backend_app(jwks=None)
    message = refused(sign_assertion(app.client_id, signing_key("RS384"), "RS384"))
    assert message == "the client has registered no public keys (jwks or jwks_uri)"
