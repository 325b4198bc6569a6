"""Introspection (RFC 7662, SMART token-introspection): 200 with the token's SMART context for a
live token, and exactly `{"active": false}` for anything else (unknown, expired, revoked,
garbage, another client's). Two kinds of caller: a client with its credentials sees only its own
tokens; a resource server with a bearer token holding the `introspection` scope sees any."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value

from smart_auth.launch import do_create_launch
from smart_auth.tokens import default_token_signer
from tests.smart_support import (
    Launch,
    authorize,
    claims_of,
    code_from,
    exchange,
    full_launch,
    logged_in,
    make_app,
    refresh,
)

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def basic(app, secret):
    return "Basic " + base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()


def introspect(token, authorization=None, **form):
    headers = {"Authorization": authorization} if authorization else {}
    return Client().post("/smart/introspect", {"token": token, **form}, headers=headers)


def mint_token(app, scope, *, user=None, lifetime=300):
    """An access token as the token endpoint stores it (for callers the flows cannot make)."""
    claims = default_token_signer.access_token_claims(
        user=user, client_id=app.client_id, scopes=scope.split(), expires_in=lifetime
    )
    token = default_token_signer.sign(claims)
    row = AccessToken(
        user=user,
        application=app,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=lifetime),
    )
    set_token_value(row, token)
    row.save()
    return token


@pytest.fixture
def resource_server(db):
    """A resource server's bearer header: a token with the `introspection` scope."""
    app, _ = make_app("Imaging archive", confidential=True, scopes="system/*.rs")
    return f"Bearer {mint_token(app, 'introspection')}"


@pytest.fixture
def live(patient_user, confidential_app):
    """(app, secret, token response) of a live authorization."""
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    return app, secret, token


# --- What a live token says -------------------------------------------------------------------


def test_an_active_token_is_described_as_its_token_response_was(live):
    app, secret, token = live
    response = introspect(token["access_token"], basic(app, secret))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    id_token = claims_of(token["id_token"])
    access = claims_of(token["access_token"])
    assert data["active"] is True
    assert data["client_id"] == app.client_id
    assert data["scope"] == token["scope"]
    assert (data["exp"], data["iat"]) == (access["exp"], access["iat"])
    assert data["token_type"] == "Bearer"
    assert data["iss"] == id_token["iss"] and data["sub"] == id_token["sub"]
    assert data["fhirUser"] == id_token["fhirUser"]  # absolute, e.g. http://.../fhir/Patient/pat-1
    for name in ("patient", "need_patient_banner", "smart_style_url"):
        assert data[name] == token[name], name


def test_a_resource_server_sees_any_clients_token(live, resource_server):
    app, _secret, token = live
    data = introspect(token["access_token"], resource_server).json()
    assert data["active"] is True and data["client_id"] == app.client_id
    assert data["patient"] == "pat-1"


def test_an_ehr_launch_tokens_context_is_introspected(clinician, patient_record, resource_server):
    from tests.flows.smart_ehr_launch.conftest import create_encounter

    app, _ = make_app(
        "EHR app",
        confidential=False,
        scopes="launch launch/encounter patient/*.rs",
        launch_uri="https://app.example.org/launch",
    )
    encounter = create_encounter("enc-1", patient_record)
    fhir_context = [{"canonical": "http://example.org/Questionnaire/q", "type": "Questionnaire"}]
    handle = do_create_launch(
        None,
        app,
        patient=patient_record,
        encounter=encounter,
        fhir_context=fhir_context,
        need_patient_banner=False,
    )
    launch = Launch.new(app, "launch launch/encounter patient/*.rs", extra={"launch": handle})
    code = code_from(authorize(logged_in(clinician), launch), launch)
    token = exchange(Client(), launch, code).json()
    data = introspect(token["access_token"], resource_server).json()
    assert data["patient"] == patient_record and data["encounter"] == encounter
    assert data["fhirContext"] == fhir_context
    assert data["need_patient_banner"] is False


def test_a_refreshed_token_keeps_its_context(live):
    app, secret, token = live
    renewed = refresh(Client(), app, token["refresh_token"], secret=secret).json()
    data = introspect(renewed["access_token"], basic(app, secret)).json()
    assert data["active"] is True and data["patient"] == "pat-1"
    assert data["need_patient_banner"] is True
    assert introspect(token["access_token"], basic(app, secret)).json() == {"active": False}


def test_a_backend_service_token_has_no_person(resource_server, db):
    app, _ = make_app("Backend", confidential=True, scopes="system/*.rs")
    data = introspect(mint_token(app, "system/*.rs"), resource_server).json()
    assert data["active"] is True and data["sub"] == app.client_id
    assert not {"patient", "fhirUser", "need_patient_banner"} & set(data)


# --- Anything else is {"active": false} and nothing more ---------------------------------------


@pytest.mark.parametrize(
    "token", ["invalid_token_value", "eyJhbGciOiJub25lIn0.e30.", "é" * 20, "x" * 20_000]
)
def test_garbage_is_inactive(confidential_app, resource_server, token):
    app, secret = confidential_app
    for caller in (basic(app, secret), resource_server):
        response = introspect(token, caller)
        assert response.status_code == 200
        assert response.json() == {"active": False}


def test_an_expired_token_is_inactive(live, resource_server):
    app, secret, token = live
    AccessToken.objects.filter(application=app).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    assert introspect(token["access_token"], basic(app, secret)).json() == {"active": False}
    assert introspect(token["access_token"], resource_server).json() == {"active": False}


def test_a_revoked_token_is_inactive(live, resource_server):
    app, secret, token = live
    Client().post(
        "/smart/revoke",
        {"token": token["access_token"]},
        headers={"Authorization": basic(app, secret)},
    )
    assert introspect(token["access_token"], basic(app, secret)).json() == {"active": False}
    assert introspect(token["access_token"], resource_server).json() == {"active": False}


def test_a_refresh_token_is_not_an_access_token(live):
    app, secret, token = live
    assert introspect(token["refresh_token"], basic(app, secret)).json() == {"active": False}


def test_a_deactivated_apps_token_is_inactive(live, resource_server):
    app, _secret, token = live
    app.is_active = False
    app.save()
    assert introspect(token["access_token"], resource_server).json() == {"active": False}


def test_a_client_sees_only_its_own_tokens(patient_user, public_app, confidential_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    app, secret = confidential_app
    assert introspect(token["access_token"], basic(app, secret)).json() == {"active": False}
    # claiming to be the token's client in the form changes nothing
    response = introspect(token["access_token"], basic(app, secret), client_id=public_app.client_id)
    assert response.json() == {"active": False}


def test_a_token_signed_by_someone_else_is_inactive(live, resource_server):
    """A stored row is not enough: the JWT must verify with one of our keys."""
    app, secret, token = live
    forged = token["access_token"].rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    row = AccessToken.objects.get(application=app)
    row.token_checksum = hashlib.sha256(forged.encode()).hexdigest()
    row.save()
    assert introspect(forged, basic(app, secret)).json() == {"active": False}


# --- Who may ask --------------------------------------------------------------------------------


def test_without_credentials_the_answer_is_401_invalid_client(live):
    _app, _secret, token = live
    response = introspect(token["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response["Cache-Control"] == "no-store"


def test_a_wrong_secret_is_401_invalid_client(live):
    app, _secret, token = live
    response = introspect(token["access_token"], basic(app, "wrong"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_public_client_cannot_introspect(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = introspect(token["access_token"], client_id=public_app.client_id)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_bearer_token_without_the_introspection_scope_is_refused(live, patient_user, public_app):
    _app, _secret, token = live
    _launch, other = full_launch(patient_user, public_app, SCOPES)
    response = introspect(token["access_token"], f"Bearer {other['access_token']}")
    assert response.status_code == 401
    assert response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("bearer", ["Bearer not-a-token", "Bearer "])
def test_an_invalid_bearer_token_is_refused(live, bearer):
    _app, _secret, token = live
    response = introspect(token["access_token"], bearer)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_an_expired_resource_server_token_is_refused(live, resource_server):
    _app, _secret, token = live
    AccessToken.objects.filter(scope="introspection").update(expires=timezone.now())
    response = introspect(token["access_token"], resource_server)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_a_missing_token_parameter_is_400(confidential_app):
    app, secret = confidential_app
    response = Client().post("/smart/introspect", {}, headers={"Authorization": basic(app, secret)})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_only_post_so_tokens_stay_out_of_urls(live):
    app, secret, token = live
    response = Client().get(
        "/smart/introspect",
        {"token": token["access_token"]},
        headers={"Authorization": basic(app, secret)},
    )
    assert response.status_code == 405
