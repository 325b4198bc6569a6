"""/smart/apps as the API contract shows, behind an admin JWT from POST /auth/token or an
X-API-Key; a SMART access token is refused there as an admin JWT is refused by the FHIR API."""

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from oauth2_provider.models import get_application_model

from smart_auth.api_keys import do_create_api_key
from tests.smart_support import REDIRECT_URI, fhir_get, full_launch

pytestmark = pytest.mark.django_db
SmartApp = get_application_model()

NEW_APP = {
    "name": "My FHIR App",
    "redirectUris": ["https://myapp.com/callback"],
    "scopes": ["patient/*.read", "openid", "fhirUser"],
    "isConfidential": True,
}


@pytest.fixture
def admin_api(admin_user):
    api = Client()
    response = api.post(
        "/auth/token",
        {"username": "admin", "password": "pw-admin-123"},
        content_type="application/json",
    )
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900
    assert response["Cache-Control"] == "no-store"
    api.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token['access_token']}"
    return api


def post_json(api, path, data, method="post"):
    return getattr(api, method)(path, data, content_type="application/json")


def test_create_returns_the_secret_once(admin_api):
    response = post_json(admin_api, "/smart/apps", NEW_APP)
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) >= {"id", "clientId", "clientSecret", "redirectUris", "scopes"}
    assert created["redirectUris"] == NEW_APP["redirectUris"]
    assert created["scopes"] == NEW_APP["scopes"]
    assert created["name"] == "My FHIR App" and created["isConfidential"] is True
    assert created["launchUri"] == ""
    stored = SmartApp.objects.get(client_id=created["clientId"])
    assert check_password(created["clientSecret"], stored.client_secret)
    assert stored.client_secret != created["clientSecret"]

    listed = admin_api.get("/smart/apps").json()
    assert [app["clientId"] for app in listed] == [created["clientId"]]
    assert "clientSecret" not in listed[0]
    read = admin_api.get(f"/smart/apps/{created['id']}").json()
    assert "clientSecret" not in read and read["clientId"] == created["clientId"]


def test_public_apps_have_no_secret(admin_api):
    response = post_json(
        admin_api,
        "/smart/apps",
        {**NEW_APP, "isConfidential": False, "launchUri": "https://myapp.com/launch"},
    )
    assert response.status_code == 201
    assert "clientSecret" not in response.json()
    assert response.json()["launchUri"] == "https://myapp.com/launch"
    assert SmartApp.objects.get().client_secret == ""


def test_update_replaces_the_registration(admin_api):
    created = post_json(admin_api, "/smart/apps", NEW_APP).json()
    changed = {
        **NEW_APP,
        "name": "Renamed",
        "scopes": ["patient/*.rs"],
        "redirectUris": [REDIRECT_URI],
    }
    response = post_json(admin_api, f"/smart/apps/{created['id']}", changed, method="put")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    assert response.json()["scopes"] == ["patient/*.rs"]
    assert "clientSecret" not in response.json()
    flip = {**changed, "isConfidential": False}
    response = post_json(admin_api, f"/smart/apps/{created['id']}", flip, method="put")
    assert response.status_code == 400 and "isConfidential" in response.json()


def test_delete_removes_the_app_and_revokes_its_tokens(admin_api, patient_user):
    created = post_json(
        admin_api,
        "/smart/apps",
        {**NEW_APP, "redirectUris": [REDIRECT_URI], "scopes": ["launch/patient", "patient/*.read"]},
    ).json()
    app = SmartApp.objects.get(client_id=created["clientId"])
    _launch, token = full_launch(
        patient_user, app, "launch/patient patient/*.read", secret=created["clientSecret"]
    )
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    assert admin_api.delete(f"/smart/apps/{created['id']}").status_code == 204
    assert admin_api.get(f"/smart/apps/{created['id']}").status_code == 404
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"redirectUris": ["https://app.example.org/cb#frag"]}, "redirectUris"),
        ({"redirectUris": ["not a url"]}, "redirectUris"),
        ({"redirectUris": ["ftp://app.example.org/cb"]}, "redirectUris"),
        ({"redirectUris": []}, "redirectUris"),
        ({"scopes": ["patient/*.read", "patient/Observation.sr"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"name": ""}, "name"),
        ({"launchUri": "nope"}, "launchUri"),
    ],
)
def test_field_errors_are_400_with_camel_case_names(admin_api, change, field):
    response = post_json(admin_api, "/smart/apps", {**NEW_APP, **change})
    assert response.status_code == 400
    assert field in response.json()
    assert not SmartApp.objects.exists()


def test_missing_fields_are_reported(admin_api):
    response = post_json(admin_api, "/smart/apps", {})
    assert response.status_code == 400
    assert {"name", "redirectUris", "scopes"} <= set(response.json())


def test_http_redirect_uris_are_refused_when_only_https_is_allowed(admin_api, settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    }
    response = post_json(
        admin_api, "/smart/apps", {**NEW_APP, "redirectUris": ["http://app.example.org/cb"]}
    )
    assert response.status_code == 400 and "redirectUris" in response.json()


def test_without_credentials_the_registry_is_closed(db):
    response = Client().get("/smart/apps")
    assert response.status_code in (401, 403)
    assert Client().post("/smart/apps", NEW_APP, content_type="application/json").status_code in (
        401,
        403,
    )


def test_a_smart_access_token_is_refused_by_the_registry(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, "launch/patient patient/*.read")
    response = Client().get(
        "/smart/apps", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert response.status_code == 401


def test_admin_token_needs_a_staff_user(patient_user, admin_user):
    api = Client()
    for username, password in (("ada", "pw-ada-123"), ("admin", "wrong"), ("nobody", "x")):
        response = post_json(api, "/auth/token", {"username": username, "password": password})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_grant"
    assert post_json(api, "/auth/token", {"username": "admin"}).status_code == 400


def test_an_admin_token_of_a_user_who_lost_staff_is_refused(admin_api, admin_user):
    admin_user.is_staff = False
    admin_user.save()
    assert admin_api.get("/smart/apps").status_code == 401


def test_api_keys_from_admin_work_and_bad_ones_do_not(admin_user, patient_user):
    _row, key = do_create_api_key("CI", admin_user)
    api = Client(headers={"X-API-Key": key})
    assert post_json(api, "/smart/apps", NEW_APP).status_code == 201
    assert Client(headers={"X-API-Key": key[:-1] + "x"}).get("/smart/apps").status_code == 401
    assert Client(headers={"X-API-Key": "garbage"}).get("/smart/apps").status_code == 401
    _row, patient_key = do_create_api_key("not staff", patient_user)
    assert Client(headers={"X-API-Key": patient_key}).get("/smart/apps").status_code == 401


def test_the_browsable_api_works_for_a_staff_session(admin_user):
    browser = Client()
    browser.force_login(admin_user)
    response = browser.get("/smart/apps", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert b"<html" in response.content.lower()
