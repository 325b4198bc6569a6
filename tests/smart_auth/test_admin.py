"""Django admin as the registry console: the secret is shown once, at creation and at
"rotate secret"; API keys likewise; tokens are listed and revocable."""

import json
import re

import pytest
from django.contrib.auth.hashers import check_password
from django.contrib.messages import get_messages
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_application_model

from smart_auth.api_keys import access_api_key
from smart_auth.models import ApiKey
from tests.smart_support import (
    REDIRECT_URI,
    backend_token_request,
    full_launch,
    public_jwk,
    sign_assertion,
    signing_key,
)

pytestmark = pytest.mark.django_db
SmartApp = get_application_model()


@pytest.fixture
def console(client, admin_user):
    client.force_login(admin_user)
    return client


def shown(response):
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def add_app(console, **changes):
    data = {
        "name": "Console app",
        "client_type": "confidential",
        "redirect_uris": REDIRECT_URI,
        "launch_uri": "",
        "scopes": "launch/patient patient/*.read openid",
        "authorization_grant_type": "authorization-code",
        "is_active": "on",
        **changes,
    }
    return console.post("/admin/smart_auth/smartapp/add/", data)


def test_the_app_list_and_add_pages_render(console):
    assert console.get("/admin/smart_auth/smartapp/").status_code == 200
    assert console.get("/admin/smart_auth/smartapp/add/").status_code == 200


def test_creating_a_confidential_app_shows_its_secret_once(console):
    response = add_app(console)
    assert response.status_code == 302, response.content
    app = SmartApp.objects.get()
    message = shown(response)
    secret = re.search(r"<code>([A-Za-z0-9]{128})</code>", message).group(1)
    assert check_password(secret, app.client_secret)
    assert secret.encode() in console.get(response["Location"]).content  # the next page shows it
    page = console.get(f"/admin/smart_auth/smartapp/{app.pk}/change/")
    assert secret.encode() not in page.content  # and never again


def test_invalid_scopes_and_redirects_are_refused(console):
    response = add_app(console, scopes="patient/*.xyz", redirect_uris="https://a.example/cb#x")
    assert response.status_code == 200
    assert not SmartApp.objects.exists()


def test_rotating_a_secret_shows_the_new_one_and_retires_the_old(console):
    console.get(add_app(console)["Location"])  # the creation message is read
    app = SmartApp.objects.get()
    old_hash = app.client_secret
    response = console.post(
        "/admin/smart_auth/smartapp/",
        {"action": "rotate_secret", "_selected_action": [app.pk]},
    )
    secret = re.search(r"<code>([A-Za-z0-9]{128})</code>", shown(response)).group(1)
    app.refresh_from_db()
    assert app.client_secret != old_hash
    assert check_password(secret, app.client_secret)


def test_deactivating_an_app_revokes_its_tokens(console, patient_user, public_app):
    _launch, _token = full_launch(patient_user, public_app, "launch/patient patient/*.read")
    response = console.post(
        f"/admin/smart_auth/smartapp/{public_app.pk}/change/",
        {
            "name": public_app.name,
            "client_type": "public",
            "redirect_uris": REDIRECT_URI,
            "launch_uri": "",
            "scopes": public_app.scopes,
            "authorization_grant_type": "authorization-code",
        },
    )
    assert response.status_code == 302, response.content
    assert not get_access_token_model().objects.exists()


def test_tokens_are_listed_and_revocable(console, patient_user, public_app):
    full_launch(patient_user, public_app, "launch/patient patient/*.read")
    token = get_access_token_model().objects.get()
    assert console.get("/admin/oauth2_provider/accesstoken/").status_code == 200
    console.post(
        "/admin/oauth2_provider/accesstoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    assert not get_access_token_model().objects.exists()
    assert console.get("/admin/oauth2_provider/grant/").status_code == 200
    assert console.get("/admin/smart_auth/launchcontext/").status_code == 200


def test_api_keys_are_shown_once_at_creation(console, admin_user):
    response = console.post(
        "/admin/smart_auth/apikey/add/", {"name": "CI", "user": admin_user.pk, "is_active": "on"}
    )
    assert response.status_code == 302, response.content
    key = re.search(r"<code>([0-9a-f]{12}\.[\w-]+)</code>", shown(response)).group(1)
    row = ApiKey.objects.get()
    assert key not in row.key_hash
    assert access_api_key(key) == row


# --- Client authentication and grant types ----------------------------------------------------

KEY = signing_key("ES384")


def add_backend_app(console, **changes):
    return add_app(
        console,
        **{
            "name": "Nightly export",
            "redirect_uris": "",
            "scopes": "system/*.rs",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": json.dumps({"keys": [public_jwk(KEY, "k1")]}),
            "jwks_uri": "",
            **changes,
        },
    )


def test_a_backend_service_with_keys_is_added_without_a_secret(console):
    response = add_backend_app(console)
    assert response.status_code == 302, response.content
    app = SmartApp.objects.get()
    assert app.grant_type_list == ["client_credentials"]
    assert app.token_endpoint_auth_method == "private_key_jwt"
    assert app.jwks == {"keys": [public_jwk(KEY, "k1")]}
    assert "Client secret" not in shown(response)
    page = console.get(f"/admin/smart_auth/smartapp/{app.pk}/change/")
    assert page.status_code == 200
    assert page.context["adminform"].form["grant_types"].value() == ["client_credentials"]
    assert re.search(rb'<input[^>]*value="client_credentials"[^>]*checked', page.content)
    assertion = sign_assertion(app.client_id, KEY, "k1", "ES384")
    assert backend_token_request(Client(), assertion).status_code == 200


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jwks": ""}, "private_key_jwt needs exactly one of jwks and jwks_uri"),
        (
            {"jwks": json.dumps({"keys": [{**public_jwk(KEY, "k1"), "d": "AQAB"}]})},
            "private key members (d) must not be sent",
        ),
        ({"jwks": "{not json"}, "Enter a valid JSON."),
        ({"scopes": "patient/*.rs"}, "needs a system/ scope"),
        ({"client_type": "public"}, "a public app does not authenticate"),
        ({"grant_types": []}, "authorization_code needs at least one redirect URI"),
    ],
)
def test_the_admin_refuses_what_the_registry_api_refuses(console, changes, message):
    response = add_backend_app(console, **changes)
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not SmartApp.objects.exists()


def test_a_key_app_has_no_secret_to_rotate(console):
    console.get(add_backend_app(console)["Location"])
    app = SmartApp.objects.get()
    before = app.client_secret
    response = console.post(
        "/admin/smart_auth/smartapp/",
        {"action": "rotate_secret", "_selected_action": [app.pk]},
    )
    assert "authenticates with private_key_jwt, not a secret" in shown(response)
    app.refresh_from_db()
    assert app.client_secret == before


def test_switching_to_a_secret_in_admin_shows_a_new_secret(console):
    console.get(add_backend_app(console)["Location"])
    app = SmartApp.objects.get()
    response = console.post(
        f"/admin/smart_auth/smartapp/{app.pk}/change/",
        {
            "name": app.name,
            "client_type": "confidential",
            "redirect_uris": "",
            "launch_uri": "",
            "scopes": "system/*.rs",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "jwks": "",
            "jwks_uri": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    secret = re.search(r"<code>([A-Za-z0-9]{128})</code>", shown(response)).group(1)
    app.refresh_from_db()
    assert check_password(secret, app.client_secret)
