"""The store's bulk create (transaction Bundles, imports): COPY on PostgreSQL, INSERTs
elsewhere, with the same rows, versions and index rows either way, and all or nothing."""

import orjson
import pytest

from fhir_api import store
from fhir_api.exceptions import Conflict
from fhir_api.models import (
    CompartmentMembership,
    DateIndex,
    Resource,
    ResourceVersion,
    StringIndex,
    TokenIndex,
)

pytestmark = pytest.mark.django_db


def new(resource_type, fhir_id, **data):
    return store.NewResource(resource_type, fhir_id, {"resourceType": resource_type, **data})


PATIENT = new("Patient", "p1", name=[{"family": "Lovelace", "given": ["Ada"]}], gender="female")
OBSERVATION = new(
    "Observation",
    "o1",
    status="final",
    code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    subject={"reference": "Patient/p1"},
    effectiveDateTime="2026-03-01T09:30:00+01:00",
)


def test_resources_come_back_with_their_versions_and_index_rows():
    stored = store.do_create_many([PATIENT, OBSERVATION])
    assert [(s.resource_type, s.fhir_id, s.version_id) for s in stored] == [
        ("Patient", "p1", 1),
        ("Observation", "o1", 1),
    ]
    observation = Resource.objects.get(fhir_id="o1")
    content = orjson.loads(observation.content)
    assert content["id"] == "o1" and content["meta"]["versionId"] == "1"
    version = ResourceVersion.objects.get(resource=observation)
    assert (version.version_id, version.method, version.content) == (1, "POST", observation.content)
    assert TokenIndex.objects.filter(resource=observation, param="code", code="8867-4").exists()
    (date,) = DateIndex.objects.filter(resource=observation, param="date")
    assert date.low.isoformat() == "2026-03-01T08:30:00+00:00"
    assert CompartmentMembership.objects.filter(resource=observation, patient_id="p1").exists()
    assert StringIndex.objects.filter(resource__fhir_id="p1", param="family").exists()
    # What the API serves is what was stored.
    assert store.read("Observation", "o1").content == observation.content


def test_a_taken_id_is_a_conflict_and_nothing_is_stored():
    store.do_create_many([PATIENT])
    with pytest.raises(Conflict):
        store.do_create_many([OBSERVATION, PATIENT])
    assert not Resource.objects.filter(fhir_id="o1").exists()
    assert not TokenIndex.objects.filter(resource__fhir_id="o1").exists()
    assert ResourceVersion.objects.count() == 1


def test_ids_keep_growing_after_a_bulk_create():
    """The bulk path takes its ids from the same sequence as a single create."""
    first = store.do_create_many([PATIENT])
    single = store.do_create("Observation", dict(OBSERVATION.data))
    rows = Resource.objects.order_by("id").values_list("fhir_id", flat=True)
    assert list(rows) == [first[0].fhir_id, single.fhir_id]
