"""`PreparedLookup`: a unique-row lookup compiled once, giving what the ORM gives."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fhir_api import store
from fhir_api.models import Resource
from fhir_api.prepared import PreparedLookup

pytestmark = pytest.mark.django_db

BY_TYPE_AND_ID = PreparedLookup(Resource, "resource_type", "fhir_id")


def field_values(row):
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


@pytest.fixture
def same_id_twice():
    """Patient/x and Observation/x: only the parameters' order tells them apart."""
    store.do_create("Patient", {"resourceType": "Patient"}, fhir_id="x")
    store.do_create(
        "Observation", {"resourceType": "Observation", "status": "final", "code": {}}, fhir_id="x"
    )


def test_the_row_is_the_one_the_orm_gives(same_id_twice):
    expected = Resource.objects.get(resource_type="Observation", fhir_id="x")
    with CaptureQueriesContext(connection) as queries:
        found = BY_TYPE_AND_ID.get("Observation", "x")
    assert len(queries) == 1
    assert field_values(found) == field_values(expected)  # the datetime converted as well
    assert BY_TYPE_AND_ID.get("Patient", "x").resource_type == "Patient"


def test_none_for_no_such_row(same_id_twice):
    assert BY_TYPE_AND_ID.get("Observation", "y") is None
    assert BY_TYPE_AND_ID.get("x", "Observation") is None


def test_a_read_by_id_is_one_statement(same_id_twice):
    with CaptureQueriesContext(connection) as queries:
        stored = store.read("Observation", "x")
    assert len(queries) == 1
    assert stored.content.startswith('{"resourceType":"Observation"')
