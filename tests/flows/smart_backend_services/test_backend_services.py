"""SMART Backend Services end to end: a registered service signs a client assertion with its
private key (RFC 7523), gets a short-lived `system/` token with client_credentials, and reads
and searches the FHIR API with it. Every way the assertion can be wrong is `invalid_client`
(401, RFC 6749 §5.2 JSON naming the check that failed). Real RSA and EC keys."""

import base64
import time

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.signals import app_authorized

from fhir_api import store
from smart_auth.assertions import JWT_BEARER, token_endpoint_url
from tests.smart_support import (
    JwksServer,
    backend_token_request,
    claims_of,
    fhir_get,
    make_app,
    make_backend_app,
    public_jwk,
    sign_assertion,
    signing_key,
    statements_of,
    token_request,
)

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()

KEY = signing_key("RS384")
EC_KEY = signing_key("ES384")


@pytest.fixture
def service():
    """A backend service registered with an inline JWKS holding an RSA and an EC P-384 key."""
    keys = [public_jwk(KEY, "rsa-1", alg="RS384"), public_jwk(EC_KEY, "ec-1", alg="ES384")]
    return make_backend_app(jwks={"keys": keys})


@pytest.fixture
def records(patient_record, other_patient):
    for patient in (patient_record, other_patient):
        store.do_create(
            "Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "heart rate"},
                "subject": {"reference": f"Patient/{patient}"},
            },
        )


def assertion_for(app, kid="rsa-1", key=KEY, alg="RS384", **claims):
    return sign_assertion(app.client_id, key, kid, alg, **claims)


def token_for(app, scope="system/*.rs", **claims):
    response = backend_token_request(Client(), assertion_for(app, **claims), scope=scope)
    assert response.status_code == 200, response.content
    return response.json()


def assert_invalid_client(response, description):
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"error": "invalid_client", "error_description": description}
    assert not AccessToken.objects.exists()


# --- Success ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kid", "alg"), [("rsa-1", "RS384"), ("ec-1", "ES384")])
def test_a_backend_service_gets_a_short_lived_system_token(service, kid, alg):
    key = KEY if alg == "RS384" else EC_KEY
    response = backend_token_request(
        Client(), assertion_for(service, kid, key, alg), scope="system/*.rs"
    )
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store" and response["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh_token
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/*.rs"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    claims = claims_of(body["access_token"])
    assert claims["sub"] == claims["client_id"] == service.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert not {"patient", "encounter", "fhirUser"} & set(claims)
    row = AccessToken.objects.get()
    assert row.user is None and row.application == service
    # The row dies with the JWT (stored a moment after signing, at most a few seconds later).
    assert 0 <= row.expires.timestamp() - claims["exp"] < 5
    assert not get_refresh_token_model().objects.exists()


def test_the_token_reads_and_searches_everything_its_system_scope_names(service, records):
    token = token_for(service)["access_token"]
    assert fhir_get("/fhir/Patient/pat-1", token).status_code == 200
    assert fhir_get("/fhir/Patient/pat-2", token).status_code == 200
    search = fhir_get("/fhir/Observation", token)
    assert search.status_code == 200
    assert search.json()["total"] == 2  # both patients' records
    assert fhir_get("/fhir/Patient?name=Lovelace", token).json()["total"] == 1
    created = Client().post(
        "/fhir/Observation",
        {"resourceType": "Observation"},
        content_type="application/fhir+json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 403  # .rs: no create


def test_a_token_for_one_type_reaches_that_type_only(service, records):
    token = token_for(service, scope="system/Observation.rs")["access_token"]
    assert fhir_get("/fhir/Observation", token).json()["total"] == 2
    assert fhir_get("/fhir/Patient/pat-1", token).status_code == 403
    assert fhir_get("/fhir/Patient", token).status_code == 403


def test_the_lifetime_is_configurable(service, settings):
    settings.SMART = {**settings.SMART, "BACKEND_TOKEN_LIFETIME": 120}
    assert token_for(service)["expires_in"] == 120


def test_a_jwks_url_is_fetched_and_used(settings, records):
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    with JwksServer({"keys": [public_jwk(EC_KEY, "ec-1")]}) as server:
        service = make_backend_app(jwks_uri=server.url)
        for _ in range(2):
            body = token_for(service, kid="ec-1", key=EC_KEY, alg="ES384")
        assert server.requests == 1  # cached for the next request
        assert fhir_get("/fhir/Observation", body["access_token"]).status_code == 200
        # A jku naming the registered URL is fine.
        assertion = sign_assertion(
            service.client_id, EC_KEY, "ec-1", "ES384", headers={"jku": server.url}
        )
        assert backend_token_request(Client(), assertion).status_code == 200


def test_a_secret_confidential_app_may_also_be_a_backend_service(records):
    app, secret = make_app(
        "Symmetric service",
        confidential=True,
        scopes="system/*.rs",
        grant_types="client_credentials",
    )
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    response = token_request(Client(), app, data, secret=secret)
    assert response.status_code == 200, response.content
    assert response.json()["expires_in"] <= 300


# --- Scopes -----------------------------------------------------------------------------------


def test_only_registered_system_scopes_are_granted(service):
    service.scopes = "system/*.rs openid launch patient/*.rs user/*.rs offline_access"
    service.save()
    body = token_for(
        service,
        scope="openid fhirUser launch/patient patient/*.rs user/*.rs offline_access "
        "system/*.rs system/*.cruds",
    )
    assert body["scope"] == "system/*.rs"
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("scope", "description"),
    [
        (None, "scope is required"),
        ("", "scope is required"),
        (
            "patient/*.rs openid",
            "none of the requested scopes is a system/ scope this client is registered for",
        ),
        (
            "system/*.cruds",
            "none of the requested scopes is a system/ scope this client is registered for",
        ),
    ],
)
def test_no_grantable_scope_is_invalid_scope(service, scope, description):
    response = backend_token_request(Client(), assertion_for(service), scope=scope)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope", "error_description": description}


# --- Refusals ---------------------------------------------------------------------------------


def test_a_replayed_assertion_is_refused_after_it_succeeded(service):
    assertion = assertion_for(service)
    assert backend_token_request(Client(), assertion).status_code == 200
    AccessToken.objects.all().delete()
    response = backend_token_request(Client(), assertion)
    assert_invalid_client(response, "client_assertion jti was already used")


def test_a_replayed_assertion_is_refused_after_it_failed_on_scope(service):
    """A jti is spent once the assertion authenticated, whatever the rest of the request."""
    assertion = assertion_for(service)
    assert backend_token_request(Client(), assertion, scope="patient/*.rs").status_code == 400
    response = backend_token_request(Client(), assertion)
    assert_invalid_client(response, "client_assertion jti was already used")


def hs256_with_public_key(app):
    """An HS256 JWT whose HMAC secret is the app's public key (algorithm confusion)."""
    import hashlib
    import hmac
    import json

    from cryptography.hazmat.primitives import serialization

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    claims = {
        "iss": app.client_id,
        "sub": app.client_id,
        "aud": token_endpoint_url(),
        "exp": now + 240,
        "jti": "hs256",
    }
    unsigned = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return unsigned + "." + b64(hmac.new(pem, unsigned.encode(), hashlib.sha256).digest())


def unsigned_none(app):
    def b64(text):
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = (
        f'{{"iss":"{app.client_id}","sub":"{app.client_id}","aud":"{token_endpoint_url()}",'
        f'"exp":{now + 240},"jti":"none-alg"}}'
    )
    return b64('{"alg":"none","kid":"rsa-1"}') + "." + b64(claims) + "."


ALG_ERROR = "client_assertion alg must be one of RS384, ES384, RS256, ES256, not {!r}"


@pytest.mark.parametrize(
    ("make", "description"),
    [
        (
            lambda app: assertion_for(app, aud="https://elsewhere.example/token"),
            "client_assertion aud must be " + "{token_url}",
        ),
        (
            lambda app: assertion_for(app, exp=int(time.time()) - 600),
            "client_assertion has expired (exp)",
        ),
        (
            lambda app: assertion_for(app, exp=int(time.time()) + 900),
            "client_assertion exp may be at most 300 seconds ahead",
        ),
        (lambda app: assertion_for(app, exp=None), "client_assertion exp is required"),
        (lambda app: assertion_for(app, jti=None), "client_assertion jti is required"),
        (unsigned_none, ALG_ERROR.format("none")),
        (hs256_with_public_key, ALG_ERROR.format("HS256")),
        (lambda app: assertion_for(app, alg="RS512"), ALG_ERROR.format("RS512")),
        (lambda app: assertion_for(app, alg="PS256"), ALG_ERROR.format("PS256")),
        (
            lambda app: assertion_for(app, iss="unknown-client", sub="unknown-client"),
            "client_assertion iss 'unknown-client' is not a registered client",
        ),
        (
            lambda app: assertion_for(app, sub="somebody-else"),
            "client_assertion sub must equal iss (the client id)",
        ),
        (
            lambda app: assertion_for(app, kid="rotated-away"),
            "no key with kid 'rotated-away' for RS384 in the client's JWKS",
        ),
        (
            lambda app: assertion_for(app, key=signing_key("RS384", name="stolen")),
            "client_assertion signature does not verify with key rsa-1",
        ),
        (
            lambda app: sign_assertion(
                app.client_id, KEY, "rsa-1", headers={"jku": "https://evil.example/jwks"}
            ),
            "client_assertion jku must be the client's registered jwks_uri",
        ),
    ],
)
def test_a_bad_assertion_is_invalid_client(service, make, description):
    response = backend_token_request(Client(), make(service))
    assert_invalid_client(response, description.replace("{token_url}", token_endpoint_url()))


def test_an_inactive_service_is_refused(service):
    service.is_active = False
    service.save()
    response = backend_token_request(Client(), assertion_for(service))
    assert_invalid_client(response, f"client {service.client_id} is inactive")


def test_an_unknown_kid_at_a_jwks_url_is_refetched_once_then_refused(settings):
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    with JwksServer({"keys": [public_jwk(KEY, "rsa-1")]}) as server:
        service = make_backend_app(jwks_uri=server.url)
        assert backend_token_request(Client(), assertion_for(service)).status_code == 200
        from django.core.cache import cache

        from smart_auth import jwks

        cache.delete(jwks._cache_key("fetched", server.url))  # more than a minute later
        response = backend_token_request(Client(), assertion_for(service, kid="unknown"))
        assert response.status_code == 401
        assert server.requests == 2  # the one refetch
        response = backend_token_request(Client(), assertion_for(service, kid="unknown"))
        assert response.json()["error_description"] == (
            "no key with kid 'unknown' for RS384 in the client's JWKS"
        )
        assert server.requests == 2  # and no more


def test_an_unreachable_jwks_url_is_a_clear_error(settings):
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    with JwksServer() as server:
        server.status = 503
        service = make_backend_app(jwks_uri=server.url)
        response = backend_token_request(Client(), assertion_for(service))
    assert_invalid_client(response, "could not fetch the client's JWKS: HTTP 503")


def test_an_app_registered_for_a_secret_cannot_send_an_assertion():
    app, _secret = make_app(
        "Secret service", confidential=True, scopes="system/*.rs", grant_types="client_credentials"
    )
    response = backend_token_request(Client(), assertion_for(app))
    assert_invalid_client(
        response,
        f"client {app.client_id} is registered for client_secret_basic, not private_key_jwt",
    )


@pytest.mark.parametrize("how", ["basic", "basic-empty", "post-empty", "client-id-only"])
def test_a_private_key_jwt_service_never_authenticates_with_a_secret(service, how):
    """It has no secret; above all `client_id:` with an empty secret must not pass."""
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    headers = {}
    if how.startswith("basic"):
        secret = "" if how == "basic-empty" else "guess"
        basic = base64.b64encode(f"{service.client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    else:
        data["client_id"] = service.client_id
        if how == "post-empty":
            data["client_secret"] = ""
    response = Client().post("/smart/token", data, headers=headers)
    assert_invalid_client(
        response,
        f"client {service.client_id} authenticates with private_key_jwt: send a "
        "client_assertion, not a client secret",
    )


def test_an_assertion_with_a_secret_as_well_is_refused(service):
    basic = base64.b64encode(f"{service.client_id}:x".encode()).decode()
    response = Client().post(
        "/smart/token",
        {
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion_for(service),
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert_invalid_client(
        response,
        "use one client authentication method: a client_assertion or a client secret, not both",
    )


def test_a_wrong_client_id_parameter_is_refused(service):
    response = backend_token_request(Client(), assertion_for(service), client_id="other-app")
    assert_invalid_client(response, "client_id does not match the client_assertion iss")


def test_a_bad_assertion_type_is_invalid_client(service):
    response = backend_token_request(
        Client(), assertion_for(service), client_assertion_type="not_an_assertion_type"
    )
    assert_invalid_client(response, f"client_assertion_type must be {JWT_BEARER}")


def test_an_unknown_grant_type_is_exactly_400(service):
    response = backend_token_request(
        Client(), assertion_for(service), grant_type="not_a_grant_type"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_service_not_registered_for_client_credentials_is_unauthorized(service):
    service.grant_types = "authorization_code"
    service.save()
    response = backend_token_request(Client(), assertion_for(service))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_a_public_app_cannot_use_client_credentials(public_app):
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    response = token_request(Client(), public_app, data)
    assert_invalid_client(
        response,
        f"public client {public_app.client_id} does not authenticate: send no client secret",
    )


# --- Revocation with an assertion -------------------------------------------------------------


def test_a_service_revokes_its_token_with_an_assertion(service):
    token = token_for(service)["access_token"]
    response = Client().post(
        "/smart/revoke",
        {
            "token": token,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion_for(service),
        },
    )
    assert response.status_code == 200, response.content
    assert fhir_get("/fhir/Patient", token).status_code == 401


def test_revocation_refuses_a_bad_assertion(service):
    token = token_for(service)["access_token"]
    response = Client().post(
        "/smart/revoke",
        {
            "token": token,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion_for(service, aud="https://elsewhere.example"),
        },
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": f"client_assertion aud must be {token_endpoint_url()}",
    }
    assert AccessToken.objects.exists()


# --- Cost ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_token_request_costs_three_statements_and_no_transaction(
    service, without_audit, monkeypatch
):
    """The app lookup, the jti insert and the token insert, each standing alone: BEGIN and
    COMMIT would be two more round trips. DOT's re-read of the token for its app_authorized
    signal is skipped while nothing listens. Keys are parsed once per process. Not counted:
    the rate limiter's cache (the database cache here; Redis in production)."""
    backend_token_request(Client(), assertion_for(service))  # warm: key parsed, URLs resolved
    transactions = []
    enter = transaction.Atomic.__enter__
    monkeypatch.setattr(
        transaction.Atomic, "__enter__", lambda self: transactions.append(1) or enter(self)
    )
    with CaptureQueriesContext(connection) as context:
        response = backend_token_request(Client(), assertion_for(service))
    assert response.status_code == 200
    assert statements_of(context) == [
        ("SELECT", "smart_auth_smartapp"),
        ("INSERT", "smart_auth_usedassertion"),
        ("INSERT", "oauth2_provider_accesstoken"),
    ]
    assert transactions == []


def test_app_authorized_still_fires_for_its_listeners(service):
    """DOT's signal, with the stored token, once something listens to it."""
    heard = []

    def listener(sender, request, token, **kwargs):
        heard.append(token)

    app_authorized.connect(listener)
    try:
        body = token_for(service)
    finally:
        app_authorized.disconnect(listener)
    (token,) = heard
    assert token.application == service and token.scope == body["scope"]


# --- Introspection with an assertion ----------------------------------------------------------


def test_a_service_introspects_its_token_with_an_assertion(service):
    token = token_for(service)["access_token"]
    credentials = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion_for(service)}
    response = Client().post("/smart/introspect", {"token": token, **credentials})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == service.client_id and body["scope"] == "system/*.rs"
    replayed = Client().post("/smart/introspect", {"token": token, **credentials})
    assert replayed.status_code == 401
    assert replayed.json() == {
        "error": "invalid_client",
        "error_description": "client_assertion jti was already used",
    }


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"},
        {"grant_type": "authorization_code", "code": "x", "client_id": "a\x00b"},
    ],
)
def test_a_nul_byte_in_a_form_client_id_is_a_bad_request(data):
    """PostgreSQL cannot compare it: refused before any lookup, never a 500."""
    response = Client().post("/smart/token", data)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_nul_byte_in_a_basic_client_id_is_an_unknown_client():
    credentials = base64.b64encode(b"a\x00b:secret").decode()
    response = Client().post(
        "/smart/token",
        {"grant_type": "client_credentials", "scope": "system/*.rs"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
