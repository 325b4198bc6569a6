"""smart_auth.launch: the launch context an EHR may give an app (SMART 2.2 fhirContext), and the
rules of a launch value (single use, one app, one person)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fhir_api import store
from smart_auth.launch import (
    LAUNCH_EXPIRED,
    LAUNCH_OTHER_USER,
    LAUNCH_USED,
    InvalidLaunch,
    InvalidLaunchContext,
    access_launch,
    check_fhir_context,
    clean_launch_context,
    do_consume_launch,
    do_create_launch,
)
from smart_auth.models import LaunchHandle
from tests.smart_support import make_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    return make_app("EHR app", confidential=False, launch_uri="https://app.example.org/l")[0]


@pytest.fixture
def records(patient_record, other_patient):
    """A report of each patient, and a Practitioner (in no patient's record)."""
    for fhir_id, patient in (("dr-mine", patient_record), ("dr-theirs", other_patient)):
        store.do_create(
            "DiagnosticReport",
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "code": {"text": "Panel"},
                "subject": {"reference": f"Patient/{patient}"},
            },
            fhir_id=fhir_id,
        )
    store.do_create("Practitioner", {"resourceType": "Practitioner"}, fhir_id="doc")


# --- fhirContext ----------------------------------------------------------------------------

ROLE = "https://example.org/fhir-context-roles/mother"

ACCEPTED = [
    [],
    [{"reference": "DiagnosticReport/dr-mine"}],
    [{"reference": "DiagnosticReport/dr-mine", "type": "DiagnosticReport", "role": "launch"}],
    [{"reference": "Practitioner/doc"}],  # in nobody's record: shared
    [{"canonical": "http://example.org/fhir/Questionnaire/phq-9|2.0", "type": "Questionnaire"}],
    [{"identifier": {"system": "urn:oid:1.2.3", "value": "A-7"}, "type": "ServiceRequest"}],
    [{"reference": "Patient/pat-2", "role": ROLE}],  # another patient, in a role
    [{"reference": "DiagnosticReport/dr-mine"}] * 2,
]


@pytest.mark.parametrize("items", ACCEPTED)
def test_well_formed_fhir_context_is_kept_as_sent(records, items):
    assert check_fhir_context(items, "pat-1") == items


REFUSED = [
    ({"reference": "DiagnosticReport/dr-mine"}, "must be an array"),
    ([{"reference": "DiagnosticReport/dr-mine"}] * 21, "at most 20 items"),
    (["DiagnosticReport/dr-mine"], "[0]: must be an object"),  # SMART 2.0's strings
    ([{"type": "DiagnosticReport"}], "needs one of reference, canonical or identifier"),
    ([{"reference": "DiagnosticReport/dr-mine", "note": "x"}], "unknown member 'note'"),
    ([{"reference": "http://other.org/fhir/DiagnosticReport/1"}], "relative reference Type/id"),
    ([{"reference": "DiagnosticReport"}], "relative reference Type/id"),
    ([{"reference": "Nonsense/1"}], "relative reference Type/id"),
    ([{"reference": "DiagnosticReport/nope"}], "DiagnosticReport/nope does not exist"),
    ([{"reference": "DiagnosticReport/dr-theirs"}], "belongs to another patient's record"),
    ([{"reference": "DiagnosticReport/dr-mine", "type": "Observation"}], "differs"),
    ([{"reference": 7}], "reference must be a non-empty string"),
    ([{"reference": ""}], "reference must be a non-empty string"),
    ([{"canonical": "Questionnaire/phq-9"}], "canonical must be an absolute URL"),
    ([{"canonical": "http://example.org/q", "type": "Nope"}], "not a FHIR resource type"),
    ([{"identifier": "A-7"}], "identifier must be a FHIR Identifier object with a value"),
    ([{"identifier": {"system": "urn:oid:1.2.3"}}], "with a value"),
    ([{"identifier": {"value": "A-7", "system": "not a uri"}}], "identifier.system"),
    ([{"identifier": {"value": "A-7", "colour": "red"}}], "identifier.colour"),
    ([{"reference": "DiagnosticReport/dr-mine", "role": ""}], "role must be a non-empty"),
    ([{"reference": "DiagnosticReport/dr-mine", "role": "mother"}], "role must be an absolute"),
    ([{"reference": "Patient/pat-1"}], "goes in the patient parameter"),
    ([{"reference": "Patient/pat-2", "role": "launch"}], "goes in the patient parameter"),
    ([{"identifier": {"value": "E-1"}, "type": "Encounter"}], "goes in the encounter parameter"),
]


@pytest.mark.parametrize(("items", "message"), REFUSED)
def test_malformed_fhir_context_is_refused_with_the_reason(records, items, message):
    with pytest.raises(InvalidLaunchContext) as refused:
        check_fhir_context(items, "pat-1")
    assert refused.value.field == "fhirContext"
    assert message in refused.value.message


@pytest.mark.parametrize("malformed", [{}, "", 0, False])
def test_fhir_context_that_is_not_an_array_is_refused_even_when_empty(patient_record, malformed):
    with pytest.raises(InvalidLaunchContext, match="must be an array"):
        clean_launch_context(patient_record, fhir_context=malformed)


def test_an_encounter_of_nobodys_record_is_not_the_patients(patient_record):
    store.do_create(
        "Encounter",
        {"resourceType": "Encounter", "status": "planned", "class": {"code": "AMB"}},
        fhir_id="enc-nobody",
    )
    with pytest.raises(InvalidLaunchContext) as refused:
        clean_launch_context(patient_record, "enc-nobody")
    assert refused.value.field == "encounter"


def test_the_launch_context_needs_an_existing_patient(patient_record):
    with pytest.raises(InvalidLaunchContext) as refused:
        clean_launch_context("nobody")
    assert refused.value.field == "patient"
    store.do_delete("Patient", patient_record)
    with pytest.raises(InvalidLaunchContext):
        clean_launch_context(patient_record)


# --- Launch values ----------------------------------------------------------------------------


def test_only_a_checksum_of_the_launch_value_is_stored(clinician, app, patient_record):
    handle = do_create_launch(clinician, app, patient=patient_record)
    row = LaunchHandle.objects.get()
    assert handle not in (row.checksum, str(row.pk))
    assert access_launch(handle, app) == row
    assert len(handle) == 43 and do_create_launch(clinician, app, patient=patient_record) != handle


def test_a_launch_is_consumed_once(clinician, app, patient_record):
    handle = do_create_launch(clinician, app, patient=patient_record)
    row = access_launch(handle, app)
    do_consume_launch(row.pk, clinician)
    with pytest.raises(InvalidLaunch, match="already used"):
        do_consume_launch(row.pk, clinician)
    with pytest.raises(InvalidLaunch) as refused:
        access_launch(handle, app)
    assert str(refused.value) == LAUNCH_USED


def test_a_persons_launch_is_consumed_only_by_them(clinician, patient_user, app, patient_record):
    row = access_launch(do_create_launch(clinician, app, patient=patient_record), app)
    with pytest.raises(InvalidLaunch) as refused:
        do_consume_launch(row.pk, patient_user)
    assert str(refused.value) == LAUNCH_OTHER_USER
    do_consume_launch(row.pk, clinician)


def test_an_api_launch_is_consumed_by_anyone_once(clinician, patient_user, app, patient_record):
    row = access_launch(do_create_launch(None, app, patient=patient_record), app)
    do_consume_launch(row.pk, patient_user)
    with pytest.raises(InvalidLaunch, match="already used"):
        do_consume_launch(row.pk, clinician)


def test_a_launch_that_expired_while_the_person_decided(clinician, app, patient_record):
    row = access_launch(do_create_launch(clinician, app, patient=patient_record), app)
    LaunchHandle.objects.update(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidLaunch) as refused:
        do_consume_launch(row.pk, clinician)
    assert str(refused.value) == LAUNCH_EXPIRED
