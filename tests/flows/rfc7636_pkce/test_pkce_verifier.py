"""PKCE at the token endpoint (RFC 7636; ONC g10 invalid PKCE tests): each case is a fresh
launch whose code was issued normally; a bad verifier gets 400 and no token."""

import pytest
from django.test import Client

from tests.smart_support import Launch, authorize, code_from, exchange, logged_in

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def issued_code(user, app):
    launch = Launch.new(app, SCOPES)
    return launch, code_from(authorize(logged_in(user), launch), launch)


@pytest.mark.parametrize("case", ["missing", "empty", "wrong", "the challenge itself"])
@pytest.mark.parametrize("confidential", [False, True])
def test_a_bad_code_verifier_gets_no_token(
    patient_user, public_app, confidential_app, case, confidential
):
    app, secret = confidential_app if confidential else (public_app, None)
    launch, code = issued_code(patient_user, app)
    verifier = {
        "missing": None,
        "empty": "",
        "wrong": "x" * 64,
        "the challenge itself": launch.challenge,
    }[case]
    response = exchange(Client(), launch, code, secret=secret, code_verifier=verifier)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in ("invalid_grant", "invalid_request")
    assert "access_token" not in response.json()
    assert response["Cache-Control"] == "no-store"


def test_the_right_verifier_gets_a_token(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    assert exchange(Client(), launch, code).status_code == 200
