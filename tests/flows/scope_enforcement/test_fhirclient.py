"""The standard Python SMART client (`fhirclient`) against the running server sees scopes
enforced as FHIR clients expect: its patient reads, another patient's record is not found
(FHIRNotFoundException) and what the scopes do not give is refused
(FHIRPermissionDeniedException)."""

import pytest
from fhirclient import client as fhir_client
from fhirclient.models.condition import Condition
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException, FHIRPermissionDeniedException

from fhir_api import store
from tests.flows.fhirclient_launch.test_fhirclient import browser_for, follow_to_app
from tests.smart_support import make_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def records(patient_record, other_patient):
    for patient in (patient_record, other_patient):
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": f"Patient/{patient}"},
        }
        store.do_create("Observation", observation, fhir_id=f"obs-{patient}")
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/pat-1"}}
    store.do_create("Condition", condition, fhir_id="cond-1")


@pytest.fixture
def launched(live_base, patient_user, records):
    """Run fhirclient's standalone launch with the given scopes; yields the ready client."""
    clients = []

    def launch(scope):
        redirect_uri = live_base + "/app/callback"
        app, _ = make_app(
            "fhirclient app", confidential=False, scopes=scope, redirect_uri=redirect_uri
        )
        settings = {
            "app_id": app.client_id,
            "api_base": live_base + "/fhir",
            "redirect_uri": redirect_uri,
            "scope": scope,
        }
        smart = fhir_client.FHIRClient(settings=settings)
        clients.append(smart)
        browser = browser_for(patient_user, live_base)
        try:
            callback = follow_to_app(browser, smart.authorize_url, live_base, redirect_uri)
        finally:
            browser.close()
        smart.handle_callback(callback)
        assert smart.ready
        return smart

    yield launch
    for smart in clients:
        smart.server.session.close()


def test_a_patient_read_token_reads_its_patient_and_nothing_else(launched, patient_record):
    smart = launched("launch/patient openid fhirUser patient/*.read")
    assert smart.patient.id == patient_record
    assert Observation.read("obs-pat-1", smart.server).subject.reference == "Patient/pat-1"
    found = list(
        Observation.where({"code": "http://loinc.org|2345-7"}).perform_resources_iter(smart.server)
    )
    assert [observation.id for observation in found] == ["obs-pat-1"]

    with pytest.raises(FHIRNotFoundException):
        Patient.read("pat-2", smart.server)
    with pytest.raises(FHIRNotFoundException):
        Observation.read("obs-pat-2", smart.server)
    new = Observation(
        {
            "status": "final",
            "code": {"text": "weight"},
            "subject": {"reference": "Patient/pat-1"},
        }
    )
    with pytest.raises(FHIRPermissionDeniedException):
        new.create(smart.server)


def test_a_type_the_scopes_do_not_name_is_a_permission_error(launched):
    smart = launched("launch/patient openid fhirUser patient/Patient.read patient/Observation.read")
    assert Observation.read("obs-pat-1", smart.server).id == "obs-pat-1"
    with pytest.raises(FHIRPermissionDeniedException):
        Condition.read("cond-1", smart.server)
    with pytest.raises(FHIRPermissionDeniedException):
        list(Condition.where({"patient": "pat-1"}).perform_resources_iter(smart.server))
