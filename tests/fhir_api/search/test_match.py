"""Criteria evaluated on index rows in Python (search/match.py) agree with the SQL of query.py."""

import pytest

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import Resource
from fhir_api.search.extract import extract_index
from fhir_api.search.match import matches_criteria
from fhir_api.search.query import criteria_q
from fhir_api.store import do_create

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

OBSERVATIONS = {
    "lab": {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "subject": {"reference": "Patient/p1"},
        "valueString": "Élevé",
    },
    "bare": {
        "resourceType": "Observation",
        "status": "preliminary",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"code": "x"}]},
        "subject": {"reference": "http://elsewhere.example.org/fhir/Patient/p1"},
    },
}

CRITERIA = [
    [("category", f"{CATEGORY}|laboratory")],
    [("category", "laboratory")],
    [("category", "|laboratory")],
    [("category", f"{CATEGORY}|")],
    [("category:not", f"{CATEGORY}|laboratory")],
    [("category", "exam,laboratory"), ("status", "final")],
    [("code", "http://loinc.org|1234-5")],
    [("subject", "Patient/p1")],
    [("subject", "p1")],
    [("subject:Patient", "p1")],
    [("subject", "http://elsewhere.example.org/fhir/Patient/p1")],
    [("patient", "p2")],
    [("value-string", "ele")],
    [("value-string:exact", "Élevé")],
    [("value-string:exact", "élevé")],
    [("value-string:contains", "lev")],
    [("_id", "lab")],
    [("_id:not", "lab")],
]


@pytest.mark.django_db
@pytest.mark.parametrize("criteria", CRITERIA, ids=str)
def test_python_and_sql_agree(criteria):
    for fhir_id, content in OBSERVATIONS.items():
        do_create("Observation", content, fhir_id=fhir_id)
    in_sql = set(
        Resource.objects.filter(resource_type="Observation")
        .filter(criteria_q("Observation", criteria))
        .values_list("fhir_id", flat=True)
    )
    in_python = {
        fhir_id
        for fhir_id, content in OBSERVATIONS.items()
        if matches_criteria("Observation", fhir_id, extract_index("Observation", content), criteria)
    }
    assert in_python == in_sql


@pytest.mark.parametrize(
    "criteria",
    [
        [("date", "ge2020")],
        [("_lastUpdated", "ge2020")],
        [("nonsense", "1")],
        [("code:below", "1")],
        [("value-string:missing", "true")],
        [("subject.name", "x")],
        [("category", "")],
    ],
)
def test_what_cannot_be_checked_raises(criteria):
    rows = extract_index("Observation", OBSERVATIONS["lab"])
    with pytest.raises(InvalidSearch):
        matches_criteria("Observation", "lab", rows, criteria)
