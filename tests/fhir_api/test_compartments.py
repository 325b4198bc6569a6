"""The R4 Patient compartment: who a resource belongs to, and the Q that limits a search to it."""

import pytest
from django.conf import settings

from fhir_api.compartments import (
    PATIENT_COMPARTMENT,
    can_be_in_patient_compartment,
    get_patient_ids,
    patient_compartment_q,
)
from fhir_api.models import Resource
from fhir_api.store import do_create
from tests.conftest import load_example

BASES = (settings.FHIR["BASE_URL"],)


def patient_ids(resource):
    return get_patient_ids(resource["resourceType"], resource, BASES)


def test_the_r4_definition_lists_66_types():
    assert len(PATIENT_COMPARTMENT) == 66
    assert PATIENT_COMPARTMENT["Coverage"] == {
        "policy-holder": ("policyHolder",),
        "subscriber": ("subscriber",),
        "beneficiary": ("beneficiary",),
        "payor": ("payor",),
    }
    assert not can_be_in_patient_compartment("Practitioner")
    assert not can_be_in_patient_compartment("Organization")
    assert can_be_in_patient_compartment("Observation")


def test_a_patient_is_in_its_own_compartment_and_those_it_links_to():
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
    }
    assert patient_ids(patient) == {"p1", "p2"}


def test_observation_subject_and_performer_count():
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1"},
        "performer": [{"reference": "Patient/p2"}, {"reference": "Practitioner/d1"}],
    }
    assert patient_ids(observation) == {"p1", "p2"}


def test_element_paths_behind_compartment_params():
    assert patient_ids({"resourceType": "Encounter", "subject": {"reference": "Patient/e"}}) == {
        "e"
    }
    group = {"resourceType": "Group", "member": [{"entity": {"reference": "Patient/g"}}]}
    assert patient_ids(group) == {"g"}
    coverage = {
        "resourceType": "Coverage",
        "beneficiary": {"reference": "Patient/b"},
        "subscriber": {"reference": "Patient/s"},
        "payor": [{"reference": "Organization/o"}],
    }
    assert patient_ids(coverage) == {"b", "s"}
    supply = {"resourceType": "SupplyRequest", "deliverTo": {"reference": "Patient/d"}}
    assert patient_ids(supply) == {"d"}
    procedure = {"resourceType": "Procedure", "performer": [{"actor": {"reference": "Patient/a"}}]}
    assert patient_ids(procedure) == {"a"}


def test_only_explicit_patient_references_count():
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "http://elsewhere.org/fhir/Patient/x"},
        "performer": [{"reference": "#p"}, {"reference": "Group/g"}, {"display": "Someone"}],
    }
    assert patient_ids(observation) == set()
    ours = {"resourceType": "Observation", "subject": {"reference": BASES[0] + "/Patient/y"}}
    assert patient_ids(ours) == {"y"}


def test_types_outside_the_compartment_have_no_patients():
    practitioner = {"resourceType": "Practitioner", "id": "d1"}
    assert patient_ids(practitioner) == set()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("observation-example.json", {"example"}),
        ("allergyintolerance-example.json", {"example"}),
        ("encounter-example.json", {"example"}),
        ("coverage-example.json", {"4"}),
    ],
)
def test_r4_examples(name, expected):
    assert patient_ids(load_example(name)) == expected


@pytest.mark.django_db
def test_patient_compartment_q_limits_a_queryset():
    mine = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    do_create("Patient", {"resourceType": "Patient"}, fhir_id="p1")
    do_create("Observation", mine | {"subject": {"reference": "Patient/p1"}}, fhir_id="o1")
    do_create("Observation", mine | {"subject": {"reference": "Patient/p2"}}, fhir_id="o2")
    do_create("Practitioner", {"resourceType": "Practitioner"}, fhir_id="d1")
    in_p1 = Resource.objects.filter(patient_compartment_q("p1"))
    assert sorted(in_p1.values_list("fhir_id", flat=True)) == ["o1", "p1"]
    observations = Resource.objects.filter(patient_compartment_q("p1", "Observation"))
    assert list(observations.values_list("fhir_id", flat=True)) == ["o1"]
