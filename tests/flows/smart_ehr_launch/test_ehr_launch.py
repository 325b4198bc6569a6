"""EHR launch: the EHR opens the app's launch URI with iss and a launch handle; the app sends
the handle back with the `launch` scope and gets the EHR's patient and encounter in context.
Handles are single-use, short-lived and bound to one app and one user."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from smart_auth.launch import do_create_launch
from smart_auth.models import LaunchHandle
from tests.smart_support import (
    Launch,
    authorize,
    code_from,
    exchange,
    fhir_get,
    logged_in,
    make_app,
    query_of,
    start,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch openid fhirUser patient/*.rs"


@pytest.fixture
def ehr_app(db):
    app, _ = make_app(
        "EHR app",
        confidential=False,
        scopes="launch launch/encounter openid fhirUser patient/*.rs user/*.rs",
        launch_uri="https://app.example.org/launch",
    )
    return app


@pytest.fixture
def encounter(patient_record):
    from fhir_api import store

    store.do_create(
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{patient_record}"},
        },
        fhir_id="enc-1",
    )
    return "enc-1"


def test_ehr_launch_puts_the_ehrs_patient_and_encounter_in_context(
    clinician, ehr_app, patient_record, encounter
):
    ehr = logged_in(clinician)
    assert ehr.get("/smart/launch").status_code == 200
    opened = ehr.post(
        "/smart/launch",
        {"client_id": ehr_app.client_id, "patient": patient_record, "encounter": encounter},
    )
    assert opened.status_code == 302
    launch_url = opened["Location"]
    assert launch_url.startswith("https://app.example.org/launch?")
    params = query_of(launch_url)
    assert params["iss"] == settings.FHIR_BASE_URL

    launch = Launch.new(ehr_app, SCOPES + " launch/encounter", extra={"launch": params["launch"]})
    code = code_from(authorize(ehr, launch), launch)  # no patient picker: the EHR chose
    token = exchange(Client(), launch, code).json()
    assert token["patient"] == patient_record
    assert token["encounter"] == encounter
    assert token["need_patient_banner"] is False
    assert "launch" in token["scope"].split()
    assert fhir_get(f"/fhir/Encounter/{encounter}", token["access_token"]).status_code == 200


def test_a_launch_handle_is_single_use(clinician, ehr_app, patient_record):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    browser = logged_in(clinician)
    first = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    assert code_from(authorize(browser, first), first)
    again = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    params = query_of(start(browser, again)["Location"])
    assert params["error"] == "invalid_request"
    assert "Invalid launch parameter" in params["error_description"]


def test_an_expired_launch_is_refused(clinician, ehr_app, patient_record):
    """Seed 002 troubleshooting: "Invalid launch parameter — launch context expired"."""
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    LaunchHandle.objects.update(expires=timezone.now() - timedelta(seconds=1))
    launch = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    params = query_of(start(logged_in(clinician), launch)["Location"])
    assert params["error"] == "invalid_request"
    assert "expired" in params["error_description"]
    assert params["state"] == launch.state and "code" not in params


@pytest.mark.parametrize("handle", ["garbage", "x" * 500])
def test_a_malformed_or_unknown_launch_is_refused(clinician, ehr_app, handle):
    """Seed 002 troubleshooting: "Invalid launch parameter — malformed"."""
    launch = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    params = query_of(start(logged_in(clinician), launch)["Location"])
    assert params["error"] == "invalid_request" and "launch" in params["error_description"]


def test_a_launch_belongs_to_its_app(clinician, ehr_app, public_app, patient_record):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    launch = Launch.new(public_app, "launch/patient patient/*.rs", extra={"launch": handle})
    assert query_of(start(logged_in(clinician), launch)["Location"])["error"] == "invalid_request"


def test_a_launch_belongs_to_the_user_who_opened_it(
    clinician, patient_user, ehr_app, patient_record
):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    launch = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    browser = logged_in(patient_user)
    consent_url = start(browser, launch)["Location"]
    params = query_of(browser.get(consent_url)["Location"])
    assert params["error"] == "access_denied" and "code" not in params


def test_the_launch_scope_without_a_launch_is_not_granted(patient_user, ehr_app):
    launch = Launch.new(ehr_app, "launch patient/*.rs openid")
    token = exchange(
        Client(), launch, code_from(authorize(logged_in(patient_user), launch), launch)
    ).json()
    assert "launch" not in token["scope"].split()
    assert token["patient"] == "pat-1"  # a patient user's own record
