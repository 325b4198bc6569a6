"""Introspection (RFC 7662, SMART token-introspection): 200 for every token, SMART context for
active ones, `{"active": false}` alone for anything else."""

import base64

import pytest
from django.test import Client

from tests.smart_support import claims_of, full_launch

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def introspect(app, secret, token):
    basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
    return Client().post(
        "/smart/introspect", {"token": token}, headers={"Authorization": f"Basic {basic}"}
    )


def test_an_active_token_is_described_with_its_launch_context(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    response = introspect(app, secret, token["access_token"])
    assert response.status_code == 200
    data = response.json()
    id_token = claims_of(token["id_token"])
    assert data["active"] is True
    assert data["client_id"] == app.client_id
    assert set(data["scope"].split()) == set(token["scope"].split())
    assert data["exp"] == claims_of(token["access_token"])["exp"]
    assert data["patient"] == token["patient"]
    assert data["iss"] == id_token["iss"] and data["sub"] == id_token["sub"]
    assert data["fhirUser"] == id_token["fhirUser"]


@pytest.mark.parametrize("token", ["invalid_token_value", "eyJhbGciOiJub25lIn0.e30."])
def test_an_unknown_token_is_inactive_and_nothing_more(confidential_app, token):
    app, secret = confidential_app
    response = introspect(app, secret, token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_a_client_sees_only_its_own_tokens(patient_user, public_app, confidential_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    app, secret = confidential_app
    assert introspect(app, secret, token["access_token"]).json() == {"active": False}


def test_introspection_needs_client_credentials(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    assert Client().post("/smart/introspect", {"token": token["access_token"]}).status_code in (
        401,
        403,
    )
    assert introspect(app, "wrong", token["access_token"]).status_code in (401, 403)
