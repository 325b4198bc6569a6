"""Standalone launch end to end over HTTP: register through /smart/apps with an admin JWT,
authorize with PKCE, log in, deselect a scope, pick a patient, exchange the code, read the
Patient, refresh, revoke through Connected apps. Public and confidential apps; v1 and v2."""

from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from tests.smart_support import (
    REDIRECT_URI,
    Launch,
    claims_of,
    code_from,
    exchange,
    fhir_get,
    query_of,
    refresh,
    start,
)

pytestmark = pytest.mark.django_db


def register(admin_user, *, confidential, scopes):
    api = Client()
    login = api.post(
        "/auth/token",
        {"username": "admin", "password": "pw-admin-123"},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content
    token = login.json()["access_token"]
    response = api.post(
        "/smart/apps",
        {
            "name": "Growth Chart",
            "redirectUris": [REDIRECT_URI],
            "scopes": scopes.split(),
            "isConfidential": confidential,
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.content
    return response.json()


def browser_login(browser, location, username, password):
    """Follow the redirect to the login page and sign in; returns where login sends us."""
    response = browser.get(location)
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url.startswith(settings.LOGIN_URL if "/" in settings.LOGIN_URL else "/smart/login")
    page = browser.get(login_url)
    assert page.status_code == 200
    assert b"csrfmiddlewaretoken" in page.content
    next_url = query_of(login_url)["next"]
    response = browser.post(
        login_url, {"username": username, "password": password, "next": next_url}
    )
    assert response.status_code == 302
    return response["Location"]


def as_app(registered):
    from oauth2_provider.models import get_application_model

    return get_application_model().objects.get(client_id=registered["clientId"])


def test_public_app_with_v2_scopes_clinician_picks_a_patient(
    admin_user, clinician, patient_record, other_patient
):
    scopes = (
        "launch/patient openid fhirUser profile offline_access patient/*.rs user/Practitioner.rs"
    )
    registered = register(admin_user, confidential=False, scopes=scopes)
    assert "clientSecret" not in registered
    launch = Launch.new(as_app(registered), scopes)

    browser = Client()
    response = start(browser, launch)
    assert response.status_code == 302
    consent_url = browser_login(browser, response["Location"], "osler", "pw-osler-123")
    page = browser.get(consent_url)
    assert page.status_code == 200
    assert b"Growth Chart" in page.content and b"app.example.org" in page.content
    assert page["X-Frame-Options"] == "DENY"
    described = {choice.scope: choice.description for choice in page.context["summary"].scopes}
    assert described["patient/*.rs"] == "Read all of the selected patient's health records"

    approved = [scope for scope in scopes.split() if scope != "profile"]  # deselect one
    response = browser.post(consent_url, {"scope": approved, "approve": "1"})
    picker_url = response["Location"]
    assert picker_url.endswith("/patient")
    found = browser.get(picker_url, {"name": "gra"})
    assert [p.id for p in found.context["results"].patients] == [other_patient]
    response = browser.post(picker_url, {"patient": other_patient})
    assert response.status_code == 302
    redirect = response["Location"]
    assert redirect.startswith(REDIRECT_URI + "?")
    params = query_of(redirect)
    assert params["state"] == launch.state
    assert params["iss"] == settings.PUBLIC_BASE_URL

    app_client = Client()
    token_response = exchange(app_client, launch, params["code"])
    assert token_response.status_code == 200, token_response.content
    token = token_response.json()
    assert token_response["Cache-Control"] == "no-store"
    assert token_response["Pragma"] == "no-cache"
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 900
    assert token["scope"].split() == approved
    assert token["patient"] == other_patient
    assert token["fhirUser"] == "Practitioner/prac-1"
    assert token["need_patient_banner"] is True
    assert token["smart_style_url"] == f"{settings.PUBLIC_BASE_URL}/smart/style.json"
    assert "id_token" in token and "refresh_token" in token

    claims = claims_of(token["access_token"])
    assert claims["aud"] == settings.FHIR_BASE_URL
    assert claims["patient"] == other_patient
    assert claims["client_id"] == registered["clientId"]
    for claim in ("iss", "sub", "exp", "iat", "jti", "scope", "fhirUser"):
        assert claim in claims

    patient = fhir_get(f"/fhir/Patient/{other_patient}", token["access_token"])
    assert patient.status_code == 200
    assert patient.json()["id"] == other_patient
    assert fhir_get("/fhir/Practitioner/prac-1", token["access_token"]).status_code == 200

    refreshed = refresh(app_client, launch.app, token["refresh_token"])
    assert refreshed.status_code == 200, refreshed.content
    new = refreshed.json()
    assert refreshed["Cache-Control"] == "no-store"
    assert new["refresh_token"] != token["refresh_token"]
    assert new["patient"] == other_patient
    assert set(new["scope"].split()) == set(approved)
    assert fhir_get(f"/fhir/Patient/{other_patient}", new["access_token"]).status_code == 200

    manage = browser.get("/smart/manage")
    assert manage.status_code == 200 and b"Growth Chart" in manage.content
    assert browser.post("/smart/manage", {"client_id": registered["clientId"]}).status_code == 302
    assert fhir_get(f"/fhir/Patient/{other_patient}", new["access_token"]).status_code == 401
    assert refresh(app_client, launch.app, new["refresh_token"]).status_code == 400
    assert b"Growth Chart" not in browser.get("/smart/manage").content


def test_confidential_app_with_v1_scopes_patient_gets_own_record(
    admin_user, patient_user, patient_record
):
    scopes = "launch/patient openid fhirUser offline_access patient/*.read"
    registered = register(admin_user, confidential=True, scopes=scopes)
    secret = registered["clientSecret"]
    launch = Launch.new(as_app(registered), scopes)

    browser = Client()
    response = start(browser, launch)
    consent_url = browser_login(browser, response["Location"], "ada", "pw-ada-123")
    page = browser.get(consent_url)
    described = {choice.scope: choice.description for choice in page.context["summary"].scopes}
    assert described["patient/*.read"] == "Read all of your health records"
    assert not page.context["summary"].needs_patient_choice
    response = browser.post(consent_url, {"scope": scopes.split(), "approve": "1"})
    code = code_from(response["Location"], launch)

    app_client = Client()
    assert exchange(app_client, launch, code, secret="wrong").status_code == 401
    token_response = exchange(app_client, launch, code, secret=secret)
    assert token_response.status_code == 200, token_response.content
    token = token_response.json()
    assert token["scope"] == scopes
    assert token["patient"] == patient_record
    assert token["fhirUser"] == f"Patient/{patient_record}"
    id_claims = claims_of(token["id_token"])
    assert id_claims["fhirUser"] == f"{settings.FHIR_BASE_URL}/Patient/{patient_record}"
    assert id_claims["aud"] == registered["clientId"]

    assert fhir_get(f"/fhir/Patient/{patient_record}", token["access_token"]).status_code == 200

    # client_secret_post works too
    refreshed = refresh(app_client, launch.app, token["refresh_token"], secret=secret, auth="post")
    assert refreshed.status_code == 200, refreshed.content
    new = refreshed.json()

    assert browser.post("/smart/manage", {"client_id": registered["clientId"]}).status_code == 302
    assert fhir_get(f"/fhir/Patient/{patient_record}", new["access_token"]).status_code == 401
    assert refresh(app_client, launch.app, new["refresh_token"], secret=secret).status_code == 400


def test_authorize_by_post_form(patient_user, public_app):
    """SMART authorize-post: the request may arrive as a cross-site form POST."""
    launch = Launch.new(public_app, "launch/patient patient/*.rs openid fhirUser")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient_user)
    response = start(browser, launch, post=True)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path.startswith("/smart/authorize/")


def test_consent_decision_needs_a_csrf_token(patient_user, public_app):
    launch = Launch.new(public_app, "launch/patient patient/*.rs")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient_user)
    consent_url = start(browser, launch)["Location"]
    assert browser.get(consent_url).status_code == 200
    forged = browser.post(consent_url, {"scope": ["patient/*.rs"], "approve": "1"})
    assert forged.status_code == 403
