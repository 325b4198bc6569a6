"""/smart/token errors as RFC 6749 §5.2 JSON with the status codes the ONC tests require, and
single redemption of codes (§4.1.2): a reused code revokes what it issued."""

import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_grant_model

from tests.smart_support import (
    Launch,
    authorize,
    code_from,
    exchange,
    fhir_get,
    logged_in,
    make_app,
    refresh,
    token_request,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def issued_code(user, app):
    launch = Launch.new(app, SCOPES)
    return launch, code_from(authorize(logged_in(user), launch), launch)


def assert_error(response, status, error):
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def test_unknown_code_is_invalid_grant_400(patient_user, public_app):
    launch, _code = issued_code(patient_user, public_app)
    assert_error(exchange(Client(), launch, "not-a-code"), 400, "invalid_grant")


def test_expired_code_is_invalid_grant(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    get_grant_model().objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert_error(exchange(Client(), launch, code), 400, "invalid_grant")


def test_code_is_bound_to_its_client(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    other, _ = make_app("Other", confidential=False)
    launch.app = other
    assert_error(exchange(Client(), launch, code), 400, "invalid_grant")


def test_redirect_uri_must_match_the_authorization_request(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    response = exchange(Client(), launch, code, redirect_uri="https://app.example.org/other")
    assert_error(response, 400, "invalid_grant")


def test_wrong_or_missing_client_secret_is_invalid_client_401(patient_user, confidential_app):
    app, secret = confidential_app
    launch, code = issued_code(patient_user, app)
    assert_error(exchange(Client(), launch, code, secret="wrong"), 401, "invalid_client")
    assert_error(
        exchange(Client(), launch, code, secret="wrong", auth="post"), 401, "invalid_client"
    )
    assert_error(exchange(Client(), launch, code), 401, "invalid_client")  # client_id only
    assert exchange(Client(), launch, code, secret=secret).status_code == 200


def test_unknown_client_is_invalid_client(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    response = exchange(Client(), launch, code, client_id="nobody")
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "grant_type",
    [
        "not_a_grant_type",
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "implicit",
    ],
)
def test_unsupported_grant_type_is_400(public_app, grant_type):
    response = token_request(Client(), public_app, {"grant_type": grant_type})
    assert_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/smart/token", {"code": "\x00"}),  # found by tests/fuzz: a 500 on PostgreSQL
        ("/smart/token", {"grant_type": "authorization_code", "code": "abc\x00"}),
        ("/smart/token", {"grant_type": "refresh_token", "refresh_token": "\x00"}),
        ("/smart/revoke", {"token": "\x00", "token_type_hint": "refresh_token"}),
    ],
)
def test_a_nul_byte_in_any_parameter_is_invalid_request(confidential_app, path, form):
    app, secret = confidential_app
    basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
    response = Client().post(path, form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    assert "NUL byte" in response.json()["error_description"]


def test_missing_code_is_invalid_request(public_app):
    response = token_request(Client(), public_app, {"grant_type": "authorization_code"})
    assert_error(response, 400, "invalid_request")


def test_a_code_is_redeemed_once_and_a_replay_revokes_its_tokens(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    app_client = Client()
    first = exchange(app_client, launch, code)
    assert first.status_code == 200
    tokens = first.json()
    assert fhir_get(f"/fhir/Patient/{tokens['patient']}", tokens["access_token"]).status_code == 200

    assert_error(exchange(app_client, launch, code), 400, "invalid_grant")

    assert fhir_get(f"/fhir/Patient/{tokens['patient']}", tokens["access_token"]).status_code == 401
    assert_error(refresh(app_client, public_app, tokens["refresh_token"]), 400, "invalid_grant")


def test_a_replay_also_revokes_tokens_refreshed_since(patient_user, public_app):
    launch, code = issued_code(patient_user, public_app)
    app_client = Client()
    tokens = exchange(app_client, launch, code).json()
    refreshed = refresh(app_client, public_app, tokens["refresh_token"]).json()
    assert exchange(app_client, launch, code).status_code == 400
    assert fhir_get("/fhir/Patient/pat-1", refreshed["access_token"]).status_code == 401
    assert refresh(app_client, public_app, refreshed["refresh_token"]).status_code == 400


def test_no_refresh_token_without_offline_or_online_access(patient_user, public_app):
    launch = Launch.new(public_app, "launch/patient patient/*.rs")
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    token = exchange(Client(), launch, code).json()
    assert "refresh_token" not in token
    assert "id_token" not in token
    assert token["scope"] == "launch/patient patient/*.rs"


def test_id_token_carries_the_nonce(patient_user, public_app, settings):
    from tests.smart_support import claims_of

    launch = Launch.new(
        public_app, "openid fhirUser launch/patient patient/*.rs", extra={"nonce": "n-0S6_WzA2Mj"}
    )
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    token = exchange(Client(), launch, code).json()
    claims = claims_of(token["id_token"])
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["iss"] == settings.PUBLIC_BASE_URL
    assert claims["sub"] == claims_of(token["access_token"])["sub"]


def test_browser_apps_may_call_the_token_endpoint_from_any_origin(patient_user, public_app):
    """CORS without credentials (config.settings): a public app in a browser exchanges its
    code; no cookie ever rides along, and the code alone is useless without its verifier."""
    launch, code = issued_code(patient_user, public_app)
    response = Client().post(
        "/smart/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": launch.redirect_uri,
            "code_verifier": launch.verifier,
            "client_id": public_app.client_id,
        },
        headers={"Origin": "https://app.example.org"},
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


def test_tokens_of_a_deactivated_user_stop_working(patient_user, public_app):
    from tests.smart_support import full_launch

    _launch, token = full_launch(patient_user, public_app, SCOPES)
    patient_user.is_active = False
    patient_user.save()
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400


def test_id_token_verifies_against_the_published_jwks(patient_user, public_app, settings):
    """As an OpenID relying party checks it: RS256, kid in the JWKS, iss = discovery issuer."""
    import jwt as pyjwt

    launch = Launch.new(public_app, "openid fhirUser launch/patient patient/*.rs")
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    id_token = exchange(Client(), launch, code).json()["id_token"]
    header = pyjwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    issuer = Client().get("/.well-known/openid-configuration").json()["issuer"]
    jwks = Client().get("/.well-known/jwks.json").json()
    (jwk,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    claims = pyjwt.decode(
        id_token,
        pyjwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=public_app.client_id,
        issuer=issuer,
    )
    assert claims["fhirUser"] == f"{settings.FHIR_BASE_URL}/Patient/pat-1"
    assert claims["sub"] and claims["iat"] and claims["exp"]
