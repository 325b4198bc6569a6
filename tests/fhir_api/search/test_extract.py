"""Index extraction on the official R4 examples."""

import json
from datetime import UTC, datetime

import pytest
from django.conf import settings

from fhir_api.search.date import MAX_INSTANT
from fhir_api.search.extract import extract_index
from tests.conftest import EXAMPLES_DIR, load_example


def rows_for(rows, param):
    return [row[1:] for row in rows if row[0] == param]


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.json")), ids=lambda path: path.name)
def test_every_r4_example_extracts_without_error(path):
    content = json.loads(path.read_text())
    rows = extract_index(content.get("resourceType", ""), content)
    for _, low, high in rows.dates:
        assert low.tzinfo is not None and low <= high
    for _, value, exact in rows.strings:
        assert len(value) <= 255 and len(exact) <= 255


def test_observation_example():
    rows = extract_index("Observation", load_example("observation-example.json"))
    assert ("http://loinc.org", "29463-7") in rows_for(rows.tokens, "code")
    assert rows_for(rows.tokens, "category") == [
        ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
    ]
    assert rows_for(rows.tokens, "status") == [("", "final")]
    assert rows_for(rows.references, "patient") == [("Patient", "example", "")]
    assert rows_for(rows.references, "subject") == [("Patient", "example", "")]
    assert rows_for(rows.references, "encounter") == [("Encounter", "example", "")]
    [(low, high)] = rows_for(rows.dates, "date")
    assert low == datetime(2016, 3, 28, tzinfo=UTC)
    assert high == datetime(2016, 3, 28, 23, 59, 59, 999999, tzinfo=UTC)
    assert rows.compartments == {"example"}


def test_patient_example():
    rows = extract_index("Patient", load_example("patient-example.json"))
    names = rows_for(rows.strings, "name")
    assert ("chalmers", "Chalmers") in names and ("jim", "Jim") in names
    assert rows_for(rows.strings, "family") == [("chalmers", "Chalmers"), ("windsor", "Windsor")]
    assert ("urn:oid:1.2.36.146.595.217.0.1", "12345") in rows_for(rows.tokens, "identifier")
    assert rows_for(rows.tokens, "gender") == [("", "male")]
    assert rows_for(rows.tokens, "active") == [("", "true")]
    assert rows_for(rows.references, "organization") == [("Organization", "1", "")]
    assert len(rows_for(rows.dates, "birthdate")) == 1
    assert rows.compartments == {"example"}


def test_period_with_open_end():
    encounter = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "period": {"start": "2015-01-17T16:00:00+10:00"},
        "subject": {"reference": "Patient/p1"},
    }
    rows = extract_index("Encounter", encounter)
    assert rows_for(rows.dates, "date") == [
        (datetime(2015, 1, 17, 6, tzinfo=UTC), MAX_INSTANT),
    ]
    assert rows_for(rows.references, "patient") == [("Patient", "p1", "")]
    assert rows.compartments == {"p1"}


def test_references_keep_only_allowed_targets_and_skip_unindexable():
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Group/g1"},
        "performer": [
            {"reference": "#contained"},
            {"reference": "urn:uuid:9f3c2a8e-0000-4000-8000-000000000000"},
            {"reference": "http://elsewhere.org/fhir/Practitioner/9"},
            {"reference": settings.FHIR["BASE_URL"] + "/Practitioner/7"},
        ],
    }
    rows = extract_index("Observation", observation)
    assert rows_for(rows.references, "patient") == []
    assert rows_for(rows.references, "subject") == [("Group", "g1", "")]
    assert rows_for(rows.references, "performer") == [
        ("", "", "http://elsewhere.org/fhir/Practitioner/9"),
        ("Practitioner", "7", ""),
    ]
    assert rows.compartments == set()


def test_odd_values_are_skipped_not_raised():
    observation = {
        "resourceType": "Observation",
        "code": "not a concept",
        "category": [None, 3, {"coding": [None, {"code": 5}]}],
        "effectiveDateTime": "2013-02-30",
        "subject": "Patient/1",
        "identifier": [{"system": 7, "value": "v"}],
    }
    rows = extract_index("Observation", observation)
    assert rows.dates == [] and rows.references == []
    assert ("identifier", "", "v") in rows.tokens


def test_duplicate_values_give_one_row():
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/1"},
        "category": [
            {"coding": [{"system": "s", "code": "c"}]},
            {"coding": [{"system": "s", "code": "c"}]},
        ],
    }
    assert rows_for(extract_index("Condition", condition).tokens, "category") == [("s", "c")]
