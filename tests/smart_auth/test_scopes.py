"""SMART scope parsing, coverage and descriptions: pure functions, no database."""

import pytest

from smart_auth.scopes import (
    CLINICAL,
    describe_scope,
    filter_registered,
    has_refresh_access,
    is_covered,
    needs_patient,
    parse_scope,
    parse_scopes,
)

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.mark.parametrize(
    ("text", "context", "resource_type", "permissions", "version"),
    [
        ("patient/*.read", "patient", "*", "rs", 1),
        ("user/Observation.write", "user", "Observation", "cud", 1),
        ("system/*.*", "system", "*", "cruds", 1),
        ("patient/Observation.rs", "patient", "Observation", "rs", 2),
        ("user/Patient.cruds", "user", "Patient", "cruds", 2),
        ("patient/Condition.c", "patient", "Condition", "c", 2),
        ("patient/Encounter.ud", "patient", "Encounter", "ud", 2),
    ],
)
def test_clinical_scopes_parse_v1_and_v2(text, context, resource_type, permissions, version):
    scope = parse_scope(text)
    assert scope.kind == CLINICAL
    assert (scope.context, scope.resource_type, scope.permissions, scope.version) == (
        context,
        resource_type,
        permissions,
        version,
    )


def test_granular_scope_keeps_its_constraint_as_written():
    scope = parse_scope(f"patient/Observation.rs?category={LAB}")
    assert scope.constraints == (("category", LAB),)
    assert scope.permissions == "rs"


@pytest.mark.parametrize(
    "text",
    [
        "patient/Observation.sr",  # letters out of cruds order
        "patient/Observation.rr",  # repeated letter
        "patient/Observation.dus",  # out of order
        "patient/Observation.x",  # unknown letter
        "patient/Observation.",  # no permissions
        "patient/observation.rs",  # resource types are capitalised
        "doctor/*.read",  # unknown context
        "patient/*.read?category=x",  # v1 scopes have no constraints
        "patient/Observation.rs?category",  # constraint without value
        "patient/Observation.rs?category=a b",
        "launch/imagingstudy",  # experimental launch contexts are not offered
        "email",
        "",
    ],
)
def test_malformed_or_unsupported_scopes_are_not_understood(text):
    assert parse_scope(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "launch",
        "launch/patient",
        "launch/encounter",
        "openid",
        "fhirUser",
        "profile",
        "offline_access",
        "online_access",
    ],
)
def test_context_and_identity_scopes_parse(text):
    assert parse_scope(text).text == text


def test_v1_registration_covers_the_v2_requests_it_implies():
    assert is_covered("patient/Observation.rs", ["patient/*.read"])
    assert is_covered("patient/Observation.r", ["patient/*.read"])
    assert not is_covered("patient/Observation.c", ["patient/*.read"])
    assert is_covered("patient/Observation.cud", ["patient/*.write"])


def test_v2_registration_covers_the_v1_request_it_implies():
    assert is_covered("patient/Observation.read", ["patient/Observation.rs"])
    assert not is_covered("patient/Observation.read", ["patient/Observation.r"])


def test_coverage_respects_context_type_and_constraints():
    assert not is_covered("user/Observation.rs", ["patient/*.rs"])
    assert not is_covered("patient/Condition.rs", ["patient/Observation.rs"])
    assert is_covered(f"patient/Observation.rs?category={LAB}", ["patient/Observation.rs"])
    assert not is_covered("patient/Observation.rs", [f"patient/Observation.rs?category={LAB}"])
    assert is_covered(
        f"patient/Observation.rs?category={LAB}", [f"patient/Observation.rs?category={LAB}"]
    )


def test_unregistered_and_unknown_scopes_are_dropped_in_request_order():
    granted = filter_registered(
        "openid patient/Observation.rs user/*.read offline_access patient/Foo.xx launch/patient",
        "launch/patient openid patient/*.read",
    )
    assert granted == ["openid", "patient/Observation.rs", "launch/patient"]


def test_duplicates_are_granted_once():
    assert filter_registered("openid openid", "openid") == ["openid"]
    assert [s.text for s in parse_scopes(["openid", "openid"])] == ["openid"]


def test_patient_context_is_needed_for_patient_scopes_and_launch_patient():
    assert needs_patient("patient/*.read")
    assert needs_patient(["launch/patient", "openid"])
    assert not needs_patient("user/*.read openid fhirUser")


def test_refresh_access_needs_offline_or_online_access():
    assert has_refresh_access("openid offline_access")
    assert has_refresh_access(["online_access"])
    assert not has_refresh_access("openid patient/*.read")


@pytest.mark.parametrize(
    ("text", "for_patient", "expected"),
    [
        (f"patient/Observation.rs?category={LAB}", True, "Read your lab results"),
        ("patient/*.read", True, "Read all of your health records"),
        ("patient/*.read", False, "Read all of the selected patient's health records"),
        ("patient/AllergyIntolerance.rs", True, "Read your allergies"),
        (
            "patient/MedicationRequest.cruds",
            True,
            "Read, add, change and delete your prescriptions",
        ),
        ("user/*.read", False, "Read health records you have access to"),
        ("openid", True, "Confirm your identity to the app"),
        ("offline_access", True, "Keep access after you close the app, until you revoke it"),
        ("launch/patient", False, "Know which patient's record you choose"),
    ],
)
def test_scopes_are_described_in_plain_words(text, for_patient, expected):
    assert describe_scope(text, for_patient=for_patient) == expected


def test_unknown_resource_types_get_a_readable_description():
    assert describe_scope("patient/NutritionOrder.rs") == "Read your nutrition order records"
