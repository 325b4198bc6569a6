"""End to end: a patient lets an app in, the app reads with its token, and the whole story is
in the audit trail, searchable by staff and (with an AuditEvent scope) by the patient's app;
no token can write to it."""

import pytest
from django.test import Client

from tests.conftest import FhirClient
from tests.smart_support import fhir_get, full_launch, make_app

pytestmark = pytest.mark.django_db

READ_ALL = "launch/patient openid fhirUser patient/*.rs"
WRITE_ALL = "launch/patient openid fhirUser patient/*.cruds"


def bearer(token):
    return {"Authorization": f"Bearer {token['access_token']}"}


def story(staff, patient_id):
    """(type code, subtype code, action, outcome) of the patient's events, oldest first."""
    body = staff.get("/fhir/AuditEvent", {"patient": patient_id, "_count": 100}).json()
    found = [entry["resource"] for entry in body.get("entry", [])]
    found.sort(key=lambda event: event["recorded"])
    return [(e["type"]["code"], e["subtype"][-1]["code"], e["action"], e["outcome"]) for e in found]


def test_consent_token_and_reads_are_one_searchable_story(
    patient_user, public_app, patient_record, other_patient, fhir
):
    _launch, token = full_launch(patient_user, public_app, READ_ALL)
    app = Client(REMOTE_ADDR="203.0.113.9")
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"], app).status_code == 200
    assert fhir_get("/fhir/Patient/pat-2", token["access_token"], app).status_code == 404

    assert story(fhir, "pat-1") == [
        ("110113", "AuthZ-Consent", "C", "0"),  # the patient approved the app
        ("110114", "authorization_code", "E", "0"),  # the app got its token
        ("rest", "read", "R", "0"),  # and read the record
        # R4's AuditEvent `patient` covers agents too: the patient's own attempt is here.
        ("rest", "read", "R", "4"),
    ]
    (refused,) = [s for s in story(fhir, "pat-2") if s[0] == "rest"]
    assert refused == ("rest", "read", "R", "4")  # not this patient's: audited, as refused

    read = fhir.get("/fhir/AuditEvent", {"entity": "Patient/pat-1", "subtype": "read"}).json()
    (event,) = [entry["resource"] for entry in read["entry"]]
    assert event["outcome"] == "0"
    person, app_agent, _server = event["agent"]
    assert person["who"]["reference"] == "Patient/pat-1" and person["name"] == "ada"
    assert app_agent["who"]["identifier"]["value"] == public_app.client_id
    assert app_agent["network"]["address"] == "203.0.113.9"


def test_a_patient_app_reads_its_patients_trail_only_with_a_scope_that_names_it(
    patient_user, public_app, patient_record
):
    _launch, token = full_launch(patient_user, public_app, READ_ALL)
    trail = fhir_get("/fhir/AuditEvent?patient=pat-1", token["access_token"])
    assert trail.status_code == 200
    assert trail.json()["total"] >= 2
    narrow_app, _ = make_app(
        "Observations only",
        confidential=False,
        scopes=("launch/patient openid fhirUser patient/Observation.rs"),
    )
    _launch, narrow = full_launch(
        patient_user, narrow_app, "launch/patient openid fhirUser patient/Observation.rs"
    )
    assert fhir_get("/fhir/AuditEvent", narrow["access_token"]).status_code == 403


def test_no_token_writes_the_trail(patient_user, patient_record):
    writer, _ = make_app("Writer", confidential=False, scopes=WRITE_ALL)
    _launch, token = full_launch(patient_user, writer, WRITE_ALL)
    app = FhirClient()
    made_up = {
        "resourceType": "AuditEvent",
        "type": {"code": "rest"},
        "recorded": "2020-01-01T00:00:00Z",
        "agent": [{"requestor": True, "who": {"reference": "Patient/pat-1"}}],
        "source": {"observer": {"display": "me"}},
        "entity": [{"what": {"reference": "Patient/pat-1"}}],
    }
    created = app.post_resource("/fhir/AuditEvent", made_up, **bearer(token))
    assert created.status_code == 403
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": made_up, "request": {"method": "POST", "url": "AuditEvent"}}],
    }
    assert app.post_resource("/fhir", transaction, **bearer(token)).status_code == 403
    some_event = fhir_get("/fhir/AuditEvent?patient=pat-1", token["access_token"]).json()
    event_id = some_event["entry"][0]["resource"]["id"]
    assert app.delete(f"/fhir/AuditEvent/{event_id}", headers=bearer(token)).status_code == 403
