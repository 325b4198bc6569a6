"""Refresh tokens: issued only with offline_access/online_access, rotated on every use, a
rotated one presented again revokes its whole family, the scope may narrow but never widen,
online_access ends with the login session, offline_access lasts (configurably) long."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from tests.smart_support import claims_of, fhir_get, full_launch, logged_in, refresh

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def test_refresh_rotates_and_keeps_the_context(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    response = refresh(Client(), app, token["refresh_token"], secret=secret)
    assert response.status_code == 200, response.content
    new = response.json()
    assert response["Cache-Control"] == "no-store" and response["Pragma"] == "no-cache"
    assert new["refresh_token"] != token["refresh_token"]
    assert new["expires_in"] == 900 and new["token_type"] == "Bearer"
    assert new["patient"] == token["patient"]
    assert claims_of(new["access_token"])["patient"] == token["patient"]
    assert "id_token" in new
    # The access token the old refresh token was paired with is replaced.
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert fhir_get("/fhir/Patient/pat-1", new["access_token"]).status_code == 200


def test_presenting_a_rotated_refresh_token_revokes_the_family(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    app_client = Client()
    new = refresh(app_client, public_app, token["refresh_token"]).json()
    replay = refresh(app_client, public_app, token["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert fhir_get("/fhir/Patient/pat-1", new["access_token"]).status_code == 401
    assert refresh(app_client, public_app, new["refresh_token"]).status_code == 400


def test_refresh_with_the_full_granted_scope_string_succeeds(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = refresh(Client(), public_app, token["refresh_token"], scope=token["scope"])
    assert response.status_code == 200
    assert set(response.json()["scope"].split()) == set(token["scope"].split())


def test_refresh_may_narrow_the_scope(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    narrowed = "patient/*.rs offline_access"
    response = refresh(Client(), public_app, token["refresh_token"], scope=narrowed)
    assert response.status_code == 200
    new = response.json()
    assert new["scope"] == narrowed
    assert claims_of(new["access_token"])["scope"] == narrowed


def test_refresh_may_not_widen_the_scope(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = refresh(Client(), public_app, token["refresh_token"], scope=SCOPES + " user/*.read")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_narrowing_away_offline_access_ends_the_refresh_chain(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = refresh(Client(), public_app, token["refresh_token"], scope="patient/*.rs")
    assert response.status_code == 200
    assert "refresh_token" not in response.json()
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400


def test_a_refresh_token_is_bound_to_its_client(patient_user, public_app, confidential_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    other, secret = confidential_app
    assert refresh(Client(), other, token["refresh_token"], secret=secret).status_code == 400


def test_unknown_refresh_token_is_invalid_grant(public_app):
    response = refresh(Client(), public_app, "no-such-token")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_scope_removed_from_the_app_is_not_refreshed(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    public_app.scopes = "launch/patient openid fhirUser offline_access"
    public_app.save()
    new = refresh(Client(), public_app, token["refresh_token"]).json()
    assert "patient/*.rs" not in new["scope"].split()


def test_a_deactivated_app_cannot_refresh_or_read(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    public_app.is_active = False
    public_app.save()
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 401


def test_offline_refresh_tokens_expire_after_the_configured_lifetime(
    patient_user, public_app, settings
):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    lifetime = settings.OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"]
    assert lifetime == settings.SMART["OFFLINE_REFRESH_LIFETIME"] == 90 * 24 * 3600
    get_access_token_model().objects.update(
        expires=timezone.now() - timedelta(seconds=lifetime + 1)
    )
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400


def test_an_offline_refresh_token_outlives_the_login_session(patient_user, public_app):
    from tests.smart_support import Launch, authorize, code_from, exchange

    browser = logged_in(patient_user)
    launch = Launch.new(public_app, SCOPES)
    token = exchange(Client(), launch, code_from(authorize(browser, launch), launch)).json()
    browser.post("/smart/logout")
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200


def test_an_online_refresh_token_ends_with_the_login_session(patient_user, public_app):
    from tests.smart_support import Launch, authorize, code_from, exchange

    browser = logged_in(patient_user)
    launch = Launch.new(public_app, "launch/patient patient/*.rs online_access")
    token = exchange(Client(), launch, code_from(authorize(browser, launch), launch)).json()
    app_client = Client()
    first = refresh(app_client, public_app, token["refresh_token"])
    assert first.status_code == 200, first.content
    browser.post("/smart/logout")
    after_logout = refresh(app_client, public_app, first.json()["refresh_token"])
    assert after_logout.status_code == 400
    assert after_logout.json()["error"] == "invalid_grant"


def test_a_refused_refresh_leaves_the_refresh_token_usable(patient_user, public_app):
    """Narrowing away offline_access ends the refresh token, but only once the request is
    granted: a refusal (here RFC 8707's invalid_target) leaves it as it was."""
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    refused = refresh(
        Client(), public_app, token["refresh_token"], scope="patient/*.rs", resource="not-a-uri"
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200
