"""Reference values: local Type/id, our own absolute URLs, other URLs, and what is skipped."""

import pytest
from django.conf import settings

from fhir_api.search.reference import (
    resource_type_in_url,
    split_reference,
    split_reference_element,
)

BASE = "http://fhir.example.org/fhir"


@pytest.mark.parametrize(
    ("reference", "split"),
    [
        ("Patient/123", ("Patient", "123", "")),
        ("Patient/123/_history/2", ("Patient", "123", "")),
        (f"{BASE}/Patient/123", ("Patient", "123", "")),
        ("http://elsewhere.org/fhir/Patient/9", ("", "", "http://elsewhere.org/fhir/Patient/9")),
        ("#contained", None),
        ("urn:uuid:9f3c2a8e-0000-4000-8000-000000000000", None),
        ("Patient?identifier=123", None),
        ("123", None),
        ("", None),
    ],
)
def test_split_reference(reference, split):
    assert split_reference(reference, (BASE,)) == split


def test_split_reference_element_uses_type_for_a_bare_id():
    element = {"reference": "123", "type": "Patient"}
    assert split_reference_element(element, (BASE,)) == ("Patient", "123", "")
    assert split_reference_element({"display": "no reference"}, (BASE,)) is None
    assert split_reference_element({"identifier": {"value": "1"}}, (BASE,)) is None


def test_configured_base_url_counts_as_local():
    reference = settings.FHIR["BASE_URL"] + "/Observation/o1"
    assert split_reference(reference, (settings.FHIR["BASE_URL"],)) == ("Observation", "o1", "")


def test_resource_type_in_url():
    assert resource_type_in_url("http://elsewhere.org/fhir/Patient/9") == "Patient"
    assert resource_type_in_url("http://elsewhere.org/fhir/Group/9/_history/1") == "Group"
    assert resource_type_in_url("http://elsewhere.org/a-document") is None
    assert resource_type_in_url("") is None
