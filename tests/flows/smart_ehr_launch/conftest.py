"""An EHR-launchable app, and the record an EHR launch opens: a patient's encounter and report."""

import pytest
from django.test import Client

from fhir_api import store
from tests.smart_support import make_app

LAUNCH_URI = "https://app.example.org/launch"


@pytest.fixture
def ehr_app(db):
    app, _ = make_app(
        "EHR app",
        confidential=False,
        scopes="launch launch/patient launch/encounter openid fhirUser patient/*.rs user/*.rs",
        launch_uri=LAUNCH_URI,
    )
    return app


@pytest.fixture
def encounter(patient_record):
    return create_encounter("enc-1", patient_record)


@pytest.fixture
def report(patient_record):
    store.do_create(
        "DiagnosticReport",
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"text": "Blood count"},
            "subject": {"reference": f"Patient/{patient_record}"},
        },
        fhir_id="dr-1",
    )
    return "dr-1"


def create_encounter(fhir_id, patient, start="2026-03-01T09:00:00Z"):
    store.do_create(
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"code": "AMB", "display": "ambulatory"},
            "type": [{"text": "Check-up"}],
            "subject": {"reference": f"Patient/{patient}"},
            "period": {"start": start},
        },
        fhir_id=fhir_id,
    )
    return fhir_id


@pytest.fixture
def admin_api(admin_user):
    """A client holding an admin JWT from POST /auth/token, as an EHR integration would."""
    api = Client()
    response = api.post(
        "/auth/token",
        {"username": "admin", "password": "pw-admin-123"},
        content_type="application/json",
    )
    api.defaults["HTTP_AUTHORIZATION"] = f"Bearer {response.json()['access_token']}"
    return api


def post_launch(api, body):
    return api.post("/smart/launch", body, content_type="application/json")
