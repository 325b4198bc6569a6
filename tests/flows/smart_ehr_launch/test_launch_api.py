"""POST /smart/launch, the EHR's side of an EHR launch: admin credentials only (an admin JWT or
an API key, never a browser session or a SMART token), and a 400 naming the field for any
context the server cannot give an app. A refused request makes no launch."""

import pytest
from django.test import Client

from smart_auth.api_keys import do_create_api_key
from smart_auth.models import LaunchHandle
from smart_auth.tokens import default_token_signer
from tests.flows.smart_ehr_launch.conftest import create_encounter, post_launch
from tests.smart_support import full_launch, make_app, query_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def body(ehr_app, patient_record):
    return {"clientId": ehr_app.client_id, "patient": patient_record}


# --- Who may call it ------------------------------------------------------------------------


def test_an_api_key_may_launch(admin_user, body):
    _row, key = do_create_api_key("EHR integration", admin_user)
    response = Client().post(
        "/smart/launch", body, content_type="application/json", headers={"X-API-Key": key}
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    assert LaunchHandle.objects.get().user is None  # bound to the app, not to the caller


def test_without_credentials_the_answer_is_401_json(body):
    response = post_launch(Client(), body)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not LaunchHandle.objects.exists()


def test_a_smart_access_token_is_not_an_admin_credential(admin_user, public_app, body):
    _launch, token = full_launch(
        admin_user, public_app, "launch/patient patient/*.rs", patient="pat-1"
    )
    api = Client(headers={"Authorization": f"Bearer {token['access_token']}"})
    response = post_launch(api, body)
    assert response.status_code == 401
    assert "not meant for this server" in response.json()["detail"]


def test_a_non_staff_users_admin_token_is_refused(clinician, body):
    token, _ = default_token_signer.make_admin_token(clinician)
    response = post_launch(Client(headers={"Authorization": f"Bearer {token}"}), body)
    assert response.status_code == 401
    assert not LaunchHandle.objects.exists()


def test_a_staff_browser_session_is_not_enough(admin_user, body):
    """A JSON API without CSRF protection must not accept a session cookie."""
    browser = Client()
    browser.force_login(admin_user)
    assert post_launch(browser, body).status_code == 401


def test_only_post(admin_api):
    assert admin_api.get("/smart/launch").status_code == 405


# --- What it refuses -----------------------------------------------------------------------


def refused(api, body, field):
    response = post_launch(api, body)
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert not LaunchHandle.objects.exists()
    return " ".join(errors[field])


def test_an_unknown_or_inactive_app(admin_api, body, ehr_app):
    assert "No active app" in refused(admin_api, {**body, "clientId": "nope"}, "clientId")
    ehr_app.is_active = False
    ehr_app.save()
    assert "No active app" in refused(admin_api, body, "clientId")


def test_an_app_without_a_launch_uri(admin_api, body, public_app):
    message = refused(admin_api, {**body, "clientId": public_app.client_id}, "clientId")
    assert "no launch URI" in message


@pytest.mark.parametrize("patient", ["nobody", "Patient/pat-1", "", "x" * 65])
def test_an_unknown_patient(admin_api, body, patient):
    assert refused(admin_api, {**body, "patient": patient}, "patient")


def test_a_missing_patient(admin_api, ehr_app):
    assert refused(admin_api, {"clientId": ehr_app.client_id}, "patient")


def test_an_unknown_encounter_or_another_patients(admin_api, body, other_patient):
    assert "no Encounter" in refused(admin_api, {**body, "encounter": "nope"}, "encounter")
    create_encounter("enc-other", other_patient)
    message = refused(admin_api, {**body, "encounter": "enc-other"}, "encounter")
    assert message == "Encounter/enc-other is not an encounter of Patient/pat-1"


def test_malformed_fhir_context_names_the_item(admin_api, body):
    context = [{"canonical": "http://example.org/q"}, {"reference": "http://x.org/Patient/1"}]
    message = refused(admin_api, {**body, "fhirContext": context}, "fhirContext")
    assert message == "fhirContext[1]: reference must be a relative reference Type/id"


def test_an_unknown_field_is_refused_rather_than_ignored(admin_api, body):
    assert "Unknown field" in refused(admin_api, {**body, "client_id": "x"}, "client_id")


def test_a_body_that_is_not_an_object(admin_api):
    response = post_launch(admin_api, ["not", "an", "object"])
    assert response.status_code == 400


def test_the_launch_url_keeps_the_apps_own_query(admin_api, patient_record):
    app, _ = make_app(
        "Query app",
        confidential=False,
        scopes="launch patient/*.rs",
        launch_uri="https://app.example.org/start?tenant=a",
    )
    created = post_launch(admin_api, {"clientId": app.client_id, "patient": patient_record})
    params = query_of(created.json()["launchUrl"])
    assert params["tenant"] == "a" and params["launch"] == created.json()["launch"]
