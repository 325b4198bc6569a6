"""Hostile input to the OAuth endpoints and the client registry: never a 500, errors in each
protocol's own format, and never a redirect to a URI the app did not register."""

import base64
import json
from urllib.parse import urlsplit

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_application_model

from tests.smart_support import REDIRECT_URI

from .strategies import header_values, json_values, nasty_text

pytestmark = pytest.mark.django_db

SmartApp = get_application_model()

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TOKEN_FIELDS = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "refresh_token",
    "scope",
    "client_assertion",
    "client_assertion_type",
    "assertion",
    "device_code",
    "aud",
]
GRANT_TYPES = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
    "implicit",
]


def form_for(fields, values):
    return st.fixed_dictionaries({}, optional={name: values for name in fields})


def oauth_error(response):
    """The RFC 6749 §5.2 error body of `response`, checked for shape."""
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    data = json.loads(response.content)
    assert isinstance(data.get("error"), str) and data["error"], data
    return data


def basic(client_id, secret):
    raw = f"{client_id}:{secret}".encode("latin-1", "replace")
    return "Basic " + base64.b64encode(raw).decode()


@FUZZ
@given(
    form=form_for(TOKEN_FIELDS, nasty_text | st.sampled_from(GRANT_TYPES)),
    authorization=st.none() | header_values | st.tuples(nasty_text, nasty_text),
)
def test_token_endpoint_answers_hostile_requests_with_oauth_errors(
    confidential_app, form, authorization
):
    app, _secret = confidential_app
    headers = {}
    if isinstance(authorization, tuple):
        client_id = authorization[0] or app.client_id
        headers["Authorization"] = basic(client_id, authorization[1])
    elif authorization:
        headers["Authorization"] = authorization
    response = Client().post("/smart/token", form, headers=headers)
    data = oauth_error(response)
    assert response.status_code in (400, 401, 429), (response.status_code, data)
    assert "access_token" not in data
    assert response["Cache-Control"] == "no-store"


@FUZZ
@given(raw=st.binary(max_size=400), content_type=header_values)
def test_token_endpoint_answers_bodies_that_are_not_forms(raw, content_type):
    response = Client().post("/smart/token", raw, content_type=content_type or "text/plain")
    oauth_error(response)


AUTHORIZE_FIELDS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
    "prompt",
    "claims",
    "request",
    "response_mode",
]


@FUZZ
@given(
    params=form_for(AUTHORIZE_FIELDS, nasty_text),
    use_app=st.booleans(),
    use_redirect=st.booleans(),
    post=st.booleans(),
)
def test_authorize_never_redirects_to_an_unregistered_uri(
    public_app, params, use_app, use_redirect, post
):
    if use_app:
        params["client_id"] = public_app.client_id
    if use_redirect:
        params["redirect_uri"] = REDIRECT_URI
    browser = Client()
    response = (
        browser.post("/smart/authorize", params)
        if post
        else browser.get("/smart/authorize", params)
    )
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        location = response["Location"]
        target = urlsplit(location)
        if target.netloc:
            assert location.startswith(REDIRECT_URI + "?"), location
            assert "code=" not in location
        else:
            assert location.startswith("/smart/"), location
    else:
        assert response["Content-Type"].startswith("text/html")


@FUZZ
@given(
    form=form_for(["token", "token_type_hint", "client_id", "client_secret"], nasty_text),
    endpoint=st.sampled_from(["/smart/revoke", "/smart/introspect"]),
    authenticate=st.booleans(),
)
def test_revoke_and_introspect_answer_hostile_requests(
    confidential_app, form, endpoint, authenticate
):
    app, secret = confidential_app
    headers = {"Authorization": basic(app.client_id, secret)} if authenticate else {}
    response = Client().post(endpoint, form, headers=headers)
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        oauth_error(response)
    elif endpoint == "/smart/introspect":
        assert json.loads(response.content) == {"active": False}


REGISTRY_FIELDS = [
    "name",
    "redirectUris",
    "scopes",
    "isConfidential",
    "launchUri",
    "active",
    "grantTypes",
    "tokenEndpointAuthMethod",
    "jwks",
    "jwksUri",
]


@FUZZ
@given(body=form_for(REGISTRY_FIELDS, json_values) | json_values)
def test_the_registry_refuses_hostile_apps_with_json_errors(admin_user, body):
    browser = Client()
    browser.force_login(admin_user)
    before = SmartApp.objects.count()
    response = browser.post("/smart/apps", json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    if response.status_code == 400:
        assert SmartApp.objects.count() == before
        assert isinstance(json.loads(response.content), dict)


@FUZZ
@given(body=json_values, raw=st.none() | st.binary(max_size=200))
def test_admin_login_refuses_hostile_bodies_with_json_errors(body, raw):
    data = raw if raw is not None else json.dumps(body)
    response = Client().post("/auth/token", data, content_type="application/json")
    assert response.status_code in (400, 401, 415, 429), response.status_code
    assert response["Content-Type"].startswith("application/json")
