"""/smart/apps as the API contract shows, behind an admin JWT from POST /auth/token or an
X-API-Key; a SMART access token is refused there as an admin JWT is refused by the FHIR API."""

import base64

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from oauth2_provider.models import get_application_model

from smart_auth.api_keys import do_create_api_key
from tests.smart_support import (
    REDIRECT_URI,
    JwksServer,
    backend_token_request,
    fhir_get,
    full_launch,
    public_jwk,
    sign_assertion,
    signing_key,
    token_request,
)

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
    assert {"name", "scopes"} <= set(response.json())
    # Only a backend service may have no redirect URI.
    response = post_json(admin_api, "/smart/apps", {**NEW_APP, "redirectUris": []})
    assert response.status_code == 400
    assert response.json() == {
        "redirectUris": ["authorization_code needs at least one redirect URI"]
    }


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


# --- Client authentication and grant types ----------------------------------------------------

RSA_KEY = signing_key("RS384")
BACKEND_APP = {
    "name": "Nightly export",
    "scopes": ["system/*.rs"],
    "grantTypes": ["client_credentials"],
    "tokenEndpointAuthMethod": "private_key_jwt",
    "jwks": {"keys": [public_jwk(RSA_KEY, "k1", alg="RS384")]},
}


def backend_token(app, kid="k1", key=RSA_KEY):
    return backend_token_request(Client(), sign_assertion(app["clientId"], key, kid))


def test_the_new_fields_have_defaults_that_follow_confidentiality(admin_api):
    confidential = post_json(admin_api, "/smart/apps", NEW_APP).json()
    assert confidential["grantTypes"] == ["authorization_code"]
    assert confidential["tokenEndpointAuthMethod"] == "client_secret_basic"
    assert confidential["jwks"] is None and confidential["jwksUri"] == ""
    public = post_json(admin_api, "/smart/apps", {**NEW_APP, "isConfidential": False}).json()
    assert public["tokenEndpointAuthMethod"] == "none"


def test_a_backend_service_is_registered_with_keys_and_gets_tokens(admin_api):
    response = post_json(admin_api, "/smart/apps", BACKEND_APP)
    assert response.status_code == 201, response.content
    created = response.json()
    assert "clientSecret" not in created  # it authenticates with its key
    assert created["redirectUris"] == []
    assert created["grantTypes"] == ["client_credentials"]
    assert created["tokenEndpointAuthMethod"] == "private_key_jwt"
    assert created["jwks"] == BACKEND_APP["jwks"]
    stored = SmartApp.objects.get(client_id=created["clientId"])
    assert stored.client_secret  # an unusable random secret, never the empty string
    assert backend_token(created).status_code == 200
    basic = base64.b64encode(f"{created['clientId']}:".encode()).decode()
    response = Client().post(
        "/smart/token",
        {"grant_type": "client_credentials", "scope": "system/*.rs"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 401


def test_a_jwks_url_may_be_registered_instead(admin_api):
    app = {**BACKEND_APP, "jwks": None, "jwksUri": "https://keys.example.org/jwks.json"}
    response = post_json(admin_api, "/smart/apps", app)
    assert response.status_code == 201, response.content
    assert response.json()["jwksUri"] == "https://keys.example.org/jwks.json"
    assert response.json()["jwks"] is None


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            {"jwks": None},
            {"jwks": ["private_key_jwt needs exactly one of jwks and jwks_uri"]},
        ),
        (
            {"jwksUri": "https://keys.example.org/jwks.json"},
            {"jwks": ["private_key_jwt needs exactly one of jwks and jwks_uri"]},
        ),
        (
            {"jwks": {"keys": [{**public_jwk(RSA_KEY, "k1"), "d": "AQAB"}]}},
            {"jwks": ["key 1: private key members (d) must not be sent; send the public key"]},
        ),
        (
            {"jwks": {"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}},
            {
                "jwks": [
                    "key 1: symmetric keys (kty oct) are not accepted; "
                    "register a public RSA or EC key"
                ]
            },
        ),
        (
            {"jwks": {"keys": [public_jwk(RSA_KEY, "k1"), public_jwk(RSA_KEY, "k1")]}},
            {"jwks": ["key 2: kid 'k1' is used twice"]},
        ),
        (
            {"jwks": None, "jwksUri": "https://127.0.0.1/jwks.json"},
            {
                "jwksUri": [
                    "https://127.0.0.1/jwks.json: the host is a private, loopback or "
                    "reserved address"
                ]
            },
        ),
        (
            {"scopes": ["patient/*.rs"]},
            {"scopes": ["a backend service (client_credentials) needs a system/ scope"]},
        ),
        (
            {"tokenEndpointAuthMethod": "none"},
            {
                "tokenEndpointAuthMethod": [
                    "a confidential app authenticates with client_secret_basic, "
                    "client_secret_post or private_key_jwt"
                ],
                "jwks": ["jwks and jwks_uri are only for private_key_jwt apps"],
            },
        ),
        (
            {"isConfidential": False, "tokenEndpointAuthMethod": "none", "jwks": None},
            {"grantTypes": ["client_credentials is for confidential apps only"]},
        ),
        (
            {
                "isConfidential": False,
                "grantTypes": ["authorization_code"],
                "redirectUris": [REDIRECT_URI],
            },
            {"tokenEndpointAuthMethod": ["a public app does not authenticate: its method is none"]},
        ),
    ],
)
def test_registrations_that_cannot_authenticate_are_refused(admin_api, change, errors):
    response = post_json(admin_api, "/smart/apps", {**BACKEND_APP, **change})
    assert response.status_code == 400
    assert response.json() == errors
    assert not SmartApp.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grantTypes": ["password"]}, "grantTypes"),
        ({"grantTypes": []}, "grantTypes"),
        ({"tokenEndpointAuthMethod": "client_secret_jwt"}, "tokenEndpointAuthMethod"),
    ],
)
def test_unknown_grant_types_and_methods_are_refused(admin_api, change, field):
    response = post_json(admin_api, "/smart/apps", {**BACKEND_APP, **change})
    assert response.status_code == 400 and field in response.json()


def test_a_confidential_app_can_use_both_grants_and_a_key(admin_api, patient_user):
    app = {
        **NEW_APP,
        "scopes": ["launch/patient", "patient/*.rs", "system/*.rs"],
        "grantTypes": ["authorization_code", "client_credentials"],
        "tokenEndpointAuthMethod": "private_key_jwt",
        "jwks": BACKEND_APP["jwks"],
    }
    response = post_json(admin_api, "/smart/apps", app)
    assert response.status_code == 201, response.content
    assert backend_token(response.json()).status_code == 200


def test_new_keys_take_effect_at_once(admin_api):
    created = post_json(admin_api, "/smart/apps", BACKEND_APP).json()
    new_key = signing_key("ES384")
    change = {**BACKEND_APP, "jwks": {"keys": [public_jwk(new_key, "k2")]}}
    response = post_json(admin_api, f"/smart/apps/{created['id']}", change, method="put")
    assert response.status_code == 200, response.content
    assert backend_token(created).status_code == 401
    assertion = sign_assertion(created["clientId"], new_key, "k2", "ES384")
    assert backend_token_request(Client(), assertion).status_code == 200


def test_a_new_jwks_url_is_fetched_afresh(admin_api, settings):
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    with JwksServer({"keys": [public_jwk(RSA_KEY, "k1")]}) as server:
        app = {**BACKEND_APP, "jwks": None, "jwksUri": server.url}
        created = post_json(admin_api, "/smart/apps", app).json()
        assert backend_token(created).status_code == 200
        new_key = signing_key("RS384", name="rotated")
        server.document = {"keys": [public_jwk(new_key, "k1")]}
        # Same kid, new key: the cached document would refuse it; re-saving the app forgets it.
        assert backend_token(created, key=new_key).status_code == 401
        response = post_json(admin_api, f"/smart/apps/{created['id']}", app, method="put")
        assert response.status_code == 200
        assert backend_token(created, key=new_key).status_code == 200


def test_switching_a_secret_app_to_a_key_retires_its_secret(admin_api):
    app = {**NEW_APP, "scopes": ["system/*.rs"], "grantTypes": ["client_credentials"]}
    created = post_json(admin_api, "/smart/apps", app).json()
    secret = created["clientSecret"]
    stored = SmartApp.objects.get(client_id=created["clientId"])
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    assert token_request(Client(), stored, data, secret=secret).status_code == 200

    keyed = {**app, "tokenEndpointAuthMethod": "private_key_jwt", "jwks": BACKEND_APP["jwks"]}
    response = post_json(admin_api, f"/smart/apps/{created['id']}", keyed, method="put")
    assert response.status_code == 200, response.content
    assert "clientSecret" not in response.json()
    assert token_request(Client(), stored, data, secret=secret).status_code == 401
    assert backend_token(created).status_code == 200

    # And back: a new secret, shown once; the keys are dropped.
    back = {**app, "tokenEndpointAuthMethod": "client_secret_post"}
    response = post_json(admin_api, f"/smart/apps/{created['id']}", back, method="put")
    assert response.status_code == 200, response.content
    new_secret = response.json()["clientSecret"]
    assert new_secret != secret and response.json()["jwks"] is None
    assert token_request(Client(), stored, data, secret=new_secret, auth="post").status_code == 200
