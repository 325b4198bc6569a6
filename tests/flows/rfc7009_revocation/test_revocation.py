"""Revocation (RFC 7009 at /smart/revoke, and Connected apps for people): a revoked access
token is refused by the FHIR API at once and a revoked refresh token cannot refresh."""

import base64

import pytest
from django.test import Client

from smart_auth.grants import get_connected_apps
from tests.smart_support import fhir_get, full_launch, logged_in, refresh

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def revoke(app, token, *, secret=None, hint=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    headers = {}
    if secret:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
        )
    else:
        data["client_id"] = app.client_id
    return Client().post("/smart/revoke", data, headers=headers)


def test_revoking_an_access_token_stops_it_and_its_refresh_token(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = revoke(public_app, token["access_token"], hint="access_token")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400


def test_revoking_a_refresh_token_stops_refreshing_and_its_access_token(
    patient_user, confidential_app
):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    assert (
        revoke(app, token["refresh_token"], secret=secret, hint="refresh_token").status_code == 200
    )
    assert refresh(Client(), app, token["refresh_token"], secret=secret).status_code == 400
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401


def test_a_revoked_access_token_is_refused_by_the_fhir_api_at_once(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    assert revoke(public_app, token["access_token"]).status_code == 200
    response = fhir_get("/fhir/Patient/pat-1", token["access_token"])
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


def test_revoking_a_refresh_token_revokes_its_whole_family(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, first = full_launch(patient_user, app, SCOPES, secret=secret)
    second = refresh(Client(), app, first["refresh_token"], secret=secret).json()
    third = refresh(Client(), app, second["refresh_token"], secret=secret).json()
    assert fhir_get("/fhir/Patient/pat-1", third["access_token"]).status_code == 200
    assert revoke(app, third["refresh_token"], secret=secret).status_code == 200
    for issued in (first, second, third):
        assert fhir_get("/fhir/Patient/pat-1", issued["access_token"]).status_code == 401
    assert refresh(Client(), app, third["refresh_token"], secret=secret).status_code == 400


def test_revoking_an_earlier_refresh_token_of_the_family_revokes_the_family(
    patient_user, public_app
):
    _launch, first = full_launch(patient_user, public_app, SCOPES)
    second = refresh(Client(), public_app, first["refresh_token"]).json()
    assert revoke(public_app, first["refresh_token"], hint="refresh_token").status_code == 200
    assert fhir_get("/fhir/Patient/pat-1", second["access_token"]).status_code == 401
    assert refresh(Client(), public_app, second["refresh_token"]).status_code == 400


def test_other_authorizations_survive_a_revocation(patient_user, public_app):
    _l1, kept = full_launch(patient_user, public_app, SCOPES)
    _l2, revoked = full_launch(patient_user, public_app, SCOPES)
    assert revoke(public_app, revoked["refresh_token"]).status_code == 200
    assert fhir_get("/fhir/Patient/pat-1", kept["access_token"]).status_code == 200
    assert refresh(Client(), public_app, kept["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("access_token", None),
        ("access_token", "refresh_token"),  # a wrong hint is only a hint
        ("refresh_token", None),
        ("refresh_token", "access_token"),
    ],
)
def test_the_hint_is_honoured_but_not_needed(patient_user, public_app, kind, hint):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert revoke(public_app, token[kind], hint=hint).status_code == 200
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400


def test_an_unknown_hint_is_ignored(patient_user, public_app):
    """RFC 7009 §2.1: a hint that does not find the token widens the search."""
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert revoke(public_app, token["access_token"], hint="id_token").status_code == 200
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401


def test_revocation_needs_the_clients_credentials(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    response = revoke(app, token["access_token"], secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200


def test_a_missing_token_is_invalid_request(public_app):
    response = Client().post("/smart/revoke", {"client_id": public_app.client_id})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_an_app_cannot_revoke_another_apps_token(patient_user, public_app, confidential_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    other, secret = confidential_app
    assert revoke(other, token["access_token"], secret=secret).status_code == 200  # RFC 7009 §2.2
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_unknown_tokens_revoke_quietly(public_app, hint):
    response = revoke(public_app, "no-such-token", hint=hint)
    assert response.status_code == 200 and response.content == b""


def test_connected_apps_lists_and_revokes_only_that_persons_grants(
    patient_user, clinician, public_app, patient_record
):
    _l1, mine = full_launch(patient_user, public_app, SCOPES)
    _l2, theirs = full_launch(clinician, public_app, SCOPES, patient=patient_record)
    (entry,) = get_connected_apps(patient_user)
    assert entry.application == public_app
    assert entry.has_refresh_token
    assert "patient/*.rs" in entry.scopes

    browser = logged_in(patient_user)
    page = browser.get("/smart/manage")
    assert page.status_code == 200 and public_app.name.encode() in page.content
    browser.post("/smart/manage", {"client_id": public_app.client_id})
    assert get_connected_apps(patient_user) == []
    assert fhir_get("/fhir/Patient/pat-1", mine["access_token"]).status_code == 401
    assert fhir_get("/fhir/Patient/pat-1", theirs["access_token"]).status_code == 200


def test_connected_apps_needs_a_login(db):
    response = Client().get("/smart/manage")
    assert response.status_code == 302 and response["Location"].startswith("/smart/login")
