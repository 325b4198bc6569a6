"""SMART scopes → AccessPolicy grants (smart_auth/policies.py): pure, no database."""

import pytest

from fhir_api.policy import Grant
from smart_auth.policies import get_access_policy, get_grants

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def grants(scope, patient="pat-1", fhir_user="Patient/pat-1", has_user=True):
    return get_grants(scope, patient, fhir_user, has_user)


@pytest.mark.parametrize(
    ("scope", "letters"),
    [
        ("patient/*.read", "rs"),
        ("patient/*.write", "cud"),
        ("patient/*.*", "cruds"),
        ("patient/*.rs", "rs"),
        ("patient/*.cruds", "cruds"),
        ("patient/*.c", "c"),
    ],
)
def test_v1_and_v2_permissions_become_v2_letters(scope, letters):
    assert grants(scope) == (Grant("*", frozenset(letters), patient="pat-1"),)


def test_granular_constraints_become_criteria_percent_decoded():
    scope = f"patient/Observation.rs?category={CATEGORY}|laboratory"
    encoded = "patient/Observation.rs?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem"
    encoded += "%2Fobservation-category%7Claboratory"
    expected = (
        Grant(
            "Observation",
            frozenset("rs"),
            patient="pat-1",
            criteria=(("category", f"{CATEGORY}|laboratory"),),
        ),
    )
    assert grants(scope) == expected
    assert grants(encoded) == expected


def test_patient_scopes_without_a_patient_in_context_give_nothing():
    assert grants("patient/*.read user/Practitioner.rs", patient=None, fhir_user=None) == (
        Grant("Practitioner", frozenset("rs")),
    )


def test_user_scopes_reach_a_patient_users_own_compartment_only():
    assert grants("user/*.rs", patient=None) == (Grant("*", frozenset("rs"), patient="pat-1"),)
    absolute = "https://ehr.example.org/fhir/Patient/pat-9"
    assert grants("user/*.rs", fhir_user=absolute) == (
        Grant("*", frozenset("rs"), patient="pat-9"),
    )


def test_user_scopes_reach_every_patient_for_a_clinician():
    assert grants("user/*.rs", patient="pat-2", fhir_user="Practitioner/prac-1") == (
        Grant("*", frozenset("rs")),
    )


@pytest.mark.parametrize("fhir_user", ["RelatedPerson/r1", "Person/p1"])
def test_user_scopes_give_nothing_to_users_whose_reach_is_not_modelled(fhir_user):
    assert grants("user/*.rs", fhir_user=fhir_user) == ()


def test_user_scopes_give_nothing_without_a_user():
    assert grants("user/*.rs", fhir_user=None, has_user=False) == ()


def test_system_scopes_reach_everything_of_their_type():
    assert grants("system/Observation.rs", patient=None, fhir_user=None, has_user=False) == (
        Grant("Observation", frozenset("rs")),
    )


def test_non_clinical_and_unknown_scopes_grant_nothing():
    assert grants("openid fhirUser launch/patient offline_access patient/*.dus nonsense") == ()


def test_the_policy_carries_the_tokens_context_and_caches_grants():
    claims = {
        "scope": "launch/patient patient/*.read patient/Observation.rs",
        "patient": "pat-1",
        "fhirUser": "Patient/pat-1",
        "client_id": "app",
        "encounter": "enc-1",
    }
    policy = get_access_policy(claims, has_user=True)
    assert not policy.full_access
    assert policy.scopes == ("launch/patient", "patient/*.read", "patient/Observation.rs")
    assert (policy.patient, policy.fhir_user, policy.client_id) == ("pat-1", "Patient/pat-1", "app")
    assert policy.context == {"encounter": "enc-1"}
    assert len(policy.grants) == 2
    assert get_access_policy(claims, has_user=True).grants is policy.grants
