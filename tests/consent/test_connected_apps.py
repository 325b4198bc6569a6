"""Connected apps: a person sees what they granted and revokes it, which kills the app's tokens."""

import pytest
from django.test import Client

from smart_auth.grants import get_connected_apps
from tests.smart_support import fhir_get, full_launch, make_app, refresh

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def test_the_page_lists_each_app_with_its_scopes_in_plain_words(
    patient_browser, patient_user, public_app
):
    full_launch(patient_user, public_app, SCOPES)
    page = patient_browser.get("/smart/manage")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Public app" in html
    assert "Read all of your health records" in html and "patient/*.rs" in html
    assert "Keeps access until you revoke it" in html
    assert 'Revoke access<span class="visually-hidden"> for Public app</span>' in html


def test_scopes_are_listed_in_the_order_the_app_asked_for_them(patient_user, public_app):
    """The same order as on the consent page, so a person recognises what they approved."""
    full_launch(patient_user, public_app, SCOPES)
    (connected,) = get_connected_apps(patient_user)
    assert connected.scopes == tuple(SCOPES.split())


def test_an_empty_page_says_so(patient_browser):
    html = patient_browser.get("/smart/manage").content.decode()
    assert "No app can use your data right now." in html


def test_revoking_kills_the_apps_tokens(patient_browser, patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    patient_browser.get("/smart/manage")
    response = patient_browser.submit("/smart/manage", {"client_id": public_app.client_id})
    assert response.status_code == 302 and response["Location"] == "/smart/manage"
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400
    assert get_connected_apps(patient_user) == []
    page = patient_browser.get("/smart/manage").content.decode()
    assert "Access revoked" in page and "No app can use your data right now." in page


def test_revoking_one_app_leaves_the_others(patient_browser, patient_user, public_app):
    other, _ = make_app("Other app", confidential=False)
    _l1, first = full_launch(patient_user, public_app, SCOPES)
    _l2, second = full_launch(patient_user, other, SCOPES)
    patient_browser.submit("/smart/manage", {"client_id": public_app.client_id})
    assert fhir_get("/fhir/Patient/pat-1", first["access_token"]).status_code == 401
    assert fhir_get("/fhir/Patient/pat-1", second["access_token"]).status_code == 200
    assert "Other app" in patient_browser.get("/smart/manage").content.decode()


def test_revoking_needs_the_csrf_token(patient_browser, patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    patient_browser.get("/smart/manage")
    response = patient_browser.post("/smart/manage", {"client_id": public_app.client_id})
    assert response.status_code == 403
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200


def test_revoking_an_unknown_app_shows_an_error(patient_browser):
    response = patient_browser.submit("/smart/manage", {"client_id": "no-such-app"})
    assert response.status_code == 400
    assert "This app is not known here." in response.content.decode()


def test_the_page_needs_a_login(db):
    response = Client().get("/smart/manage")
    assert response.status_code == 302
    assert response["Location"] == "/smart/login?next=/smart/manage"


def test_discovery_points_at_this_page(db, settings):
    config = Client().get("/.well-known/smart-configuration").json()
    assert config["management_endpoint"] == f"{settings.PUBLIC_BASE_URL}/smart/manage"
