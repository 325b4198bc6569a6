"""The search parameter registry: shapes every other module relies on."""

import pytest

from fhir_api.search.params import TYPES, get_search_params

US_CORE_TYPES = [
    "Patient",
    "Practitioner",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Procedure",
    "Immunization",
    "DiagnosticReport",
    "DocumentReference",
]


@pytest.mark.parametrize("resource_type", [*US_CORE_TYPES, "Basic", "NotAType"])
def test_every_type_has_id_and_last_updated(resource_type):
    params = get_search_params(resource_type)
    assert params["_id"].type == "token"
    assert params["_lastUpdated"].type == "date"


@pytest.mark.parametrize("resource_type", US_CORE_TYPES)
def test_params_are_well_formed(resource_type):
    for name, param in get_search_params(resource_type).items():
        assert param.name == name
        assert param.type in TYPES
        assert param.paths and all(path and "[" not in path for path in param.paths)
        assert not param.targets or param.type == "reference"


@pytest.mark.parametrize(
    ("resource_type", "names"),
    [
        ("Patient", {"name", "family", "given", "birthdate", "gender", "identifier"}),
        ("Patient", {"organization", "general-practitioner"}),
        ("Observation", {"patient", "subject", "code", "category", "date", "performer"}),
        ("Observation", {"encounter", "status", "identifier"}),
        ("Condition", {"clinical-status", "verification-status", "onset-date", "recorded-date"}),
        ("MedicationRequest", {"authoredon", "requester", "code", "status", "intent"}),
        ("Immunization", {"patient", "date", "vaccine-code", "status"}),
        ("Encounter", {"patient", "date", "class", "type", "status"}),
    ],
)
def test_common_us_core_params_are_supported(resource_type, names):
    assert names <= set(get_search_params(resource_type))


def test_choice_types_are_spelled_out():
    assert get_search_params("Observation")["date"].paths[:2] == (
        "effectiveDateTime",
        "effectivePeriod",
    )
    assert "performedPeriod" in get_search_params("Procedure")["date"].paths
    assert get_search_params("Immunization")["date"].paths == ("occurrenceDateTime",)


def test_patient_params_keep_only_patient_references():
    assert get_search_params("Observation")["patient"].targets == ("Patient",)
    assert "Group" in get_search_params("Observation")["subject"].targets


def test_the_registry_cannot_be_changed_through_a_result():
    get_search_params("Patient").pop("name")
    assert "name" in get_search_params("Patient")
