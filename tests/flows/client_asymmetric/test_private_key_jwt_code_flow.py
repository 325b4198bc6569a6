"""SMART "client-confidential-asymmetric": a confidential app with a registered public key
authenticates with a private_key_jwt assertion, not a secret, when it exchanges its code and
when it refreshes (RFC 7523 §2.2). PKCE still applies; each assertion is used once."""

import base64

import pytest
from django.test import Client

from smart_auth.assertions import JWT_BEARER
from tests.smart_support import (
    DEFAULT_SCOPES,
    REDIRECT_URI,
    Launch,
    authorize,
    claims_of,
    code_from,
    fhir_get,
    logged_in,
    make_backend_app,
    public_jwk,
    sign_assertion,
    signing_key,
)

pytestmark = pytest.mark.django_db

KEY = signing_key("ES384")
SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


@pytest.fixture
def app():
    return make_backend_app(
        "Asymmetric app",
        jwks={"keys": [public_jwk(KEY, "es-1", alg="ES384")]},
        scopes=DEFAULT_SCOPES,
        grant_types="authorization_code",
        redirect_uri=REDIRECT_URI,
    )


def credentials(app, **claims):
    """The form fields an asymmetric client sends instead of a secret."""
    return {
        "client_assertion_type": JWT_BEARER,
        "client_assertion": sign_assertion(app.client_id, KEY, "es-1", "ES384", **claims),
    }


def launched(user, app):
    launch = Launch.new(app, SCOPES)
    return launch, code_from(authorize(logged_in(user), launch), launch)


def exchange(launch, code, **fields):
    """The code exchange with only `fields` as credentials (no client_id unless given)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": launch.redirect_uri,
        "code_verifier": launch.verifier,
        **fields,
    }
    return Client().post("/smart/token", data)


def refresh(refresh_token, **fields):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **fields}
    return Client().post("/smart/token", data)


def test_the_code_is_exchanged_and_refreshed_with_assertions(patient_user, app):
    launch, code = launched(patient_user, app)
    response = exchange(launch, code, **credentials(app))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"] == "pat-1" and body["refresh_token"] and body["id_token"]
    assert claims_of(body["access_token"])["client_id"] == app.client_id
    assert fhir_get("/fhir/Patient/pat-1", body["access_token"]).status_code == 200

    refreshed = refresh(body["refresh_token"], **credentials(app))
    assert refreshed.status_code == 200, refreshed.content
    assert refreshed.json()["patient"] == "pat-1"
    assert fhir_get("/fhir/Patient/pat-1", refreshed.json()["access_token"]).status_code == 200


def test_the_client_id_parameter_may_come_along(patient_user, app):
    launch, code = launched(patient_user, app)
    response = exchange(launch, code, client_id=app.client_id, **credentials(app))
    assert response.status_code == 200, response.content


def test_pkce_is_still_checked(patient_user, app):
    launch, code = launched(patient_user, app)
    response = exchange(launch, code, code_verifier="x" * 50, **credentials(app))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_without_an_assertion_the_code_is_not_exchanged(patient_user, app):
    """A confidential app must authenticate: client_id alone, or an empty secret, is refused."""
    launch, code = launched(patient_user, app)
    for how in ({}, {"client_secret": ""}):
        response = exchange(launch, code, client_id=app.client_id, **how)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    basic = base64.b64encode(f"{app.client_id}:".encode()).decode()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": launch.redirect_uri,
        "code_verifier": launch.verifier,
    }
    response = Client().post("/smart/token", data, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401
    # The code survived the failed attempts.
    response = exchange(launch, code, **credentials(app))
    assert response.status_code == 200, response.content


def test_a_replayed_assertion_cannot_refresh(patient_user, app):
    launch, code = launched(patient_user, app)
    assertion = credentials(app)
    body = exchange(launch, code, **assertion).json()
    response = refresh(body["refresh_token"], **assertion)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client_assertion jti was already used",
    }


def test_another_apps_assertion_cannot_redeem_the_code(patient_user, app):
    other = make_backend_app(
        "Other asymmetric app",
        jwks={"keys": [public_jwk(KEY, "es-1", alg="ES384")]},
        scopes=DEFAULT_SCOPES,
        grant_types="authorization_code",
        redirect_uri=REDIRECT_URI,
    )
    launch, code = launched(patient_user, app)
    response = exchange(launch, code, **credentials(other))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_app_revokes_its_refresh_token_with_an_assertion(patient_user, app):
    launch, code = launched(patient_user, app)
    body = exchange(launch, code, **credentials(app)).json()
    response = Client().post("/smart/revoke", {"token": body["refresh_token"], **credentials(app)})
    assert response.status_code == 200
    response = refresh(body["refresh_token"], **credentials(app))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
