"""Search over 50,000 stored resources: a fixed number of queries, and indexes on PostgreSQL.

A patient-scoped search (a SMART token's AccessPolicy) adds its compartment filter to the same
SQL, so it costs no more queries than an unscoped one.
"""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from rest_framework.test import APIRequestFactory, force_authenticate

from fhir_api.access import narrow_q
from fhir_api.models import (
    CompartmentMembership,
    DateIndex,
    ReferenceIndex,
    Resource,
    StringIndex,
    TokenIndex,
)
from fhir_api.policy import AccessPolicy, Grant
from fhir_api.search.extract import extract_index
from fhir_api.search.query import find_matches
from fhir_api.views import ResourceViewSet

PATIENTS = 500
OBSERVATIONS_PER_PATIENT = 100
CODES = [f"{1000 + n}-{n % 10}" for n in range(20)]
LOINC = "http://loinc.org"


def observation(patient, n):
    return {
        "resourceType": "Observation",
        "id": str(uuid.UUID(int=patient * 1000 + n)),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory" if n % 2 else "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": CODES[n % len(CODES)]}]},
        "subject": {"reference": f"Patient/p{patient}"},
        "effectiveDateTime": f"20{10 + n % 15}-0{1 + n % 9}-1{n % 10}T08:00:00Z",
        "valueQuantity": {"value": n, "unit": "mg/dL"},
    }


def bulk_load():
    """Store 50,000 Observations with their index rows, as the store would, but in bulk."""
    now = datetime.now(UTC)
    documents = [
        observation(p, n) for p in range(PATIENTS) for n in range(OBSERVATIONS_PER_PATIENT)
    ]
    rows = Resource.objects.bulk_create(
        (
            Resource(
                resource_type="Observation",
                fhir_id=doc["id"],
                version_id=1,
                last_updated=now,
                content=orjson.dumps(doc).decode(),
            )
            for doc in documents
        ),
        batch_size=2000,
    )
    if rows[0].pk is None:  # databases that cannot return ids from a bulk insert
        rows = list(Resource.objects.order_by("id"))
    index = {model: [] for model in (TokenIndex, StringIndex, DateIndex, ReferenceIndex)}
    members = []
    for row, doc in zip(rows, documents, strict=True):
        extracted = extract_index("Observation", doc)
        common = {"resource_id": row.pk, "resource_type": "Observation"}
        index[TokenIndex] += [
            TokenIndex(param=p, system=s, code=c, **common) for p, s, c in extracted.tokens
        ]
        index[DateIndex] += [
            DateIndex(param=p, low=lo, high=hi, **common) for p, lo, hi in extracted.dates
        ]
        index[ReferenceIndex] += [
            ReferenceIndex(param=p, target_type=t, target_id=i, url=u, **common)
            for p, t, i, u in extracted.references
        ]
        members += [
            CompartmentMembership(patient_id=pid, **common) for pid in extracted.compartments
        ]
    for model, objects in index.items():
        model.objects.bulk_create(objects, batch_size=5000)
    CompartmentMembership.objects.bulk_create(members, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


@pytest.fixture(scope="module")
def fifty_thousand(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        bulk_load()
        yield
        for model in (TokenIndex, StringIndex, DateIndex, ReferenceIndex, CompartmentMembership):
            model.objects.all().delete()
        Resource.objects.all().delete()


def search(fhir, **params):
    response = fhir.get("/fhir/Observation", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_patient_and_code_search_costs_a_fixed_number_of_queries(
    fifty_thousand, fhir, without_audit, django_assert_max_num_queries, django_assert_num_queries
):
    fhir.get("/fhir/metadata")  # warm up session and per-process caches
    with django_assert_max_num_queries(4) as narrow:
        one_code = search(fhir, patient="p7", code=f"{LOINC}|{CODES[3]}")
    with django_assert_num_queries(len(narrow.captured_queries)):
        all_codes = search(
            fhir, patient="p7", code=",".join(f"{LOINC}|{c}" for c in CODES), _count=100
        )
    assert one_code["total"] == OBSERVATIONS_PER_PATIENT // len(CODES)
    assert all_codes["total"] == OBSERVATIONS_PER_PATIENT
    assert len(all_codes["entry"]) == OBSERVATIONS_PER_PATIENT
    assert {e["resource"]["subject"]["reference"] for e in all_codes["entry"]} == {"Patient/p7"}


# What a `patient/*.rs` token for Patient/p7 may do (smart_auth builds the same from a token).
PATIENT_SCOPED = AccessPolicy(grants=(Grant("*", frozenset("rs"), patient="p7"),), patient="p7")


def search_as(user, policy, **params):
    """GET /fhir/Observation through the view, authenticated as `user` with `policy`."""
    request = APIRequestFactory().get("/fhir/Observation", params)
    force_authenticate(request, user=user, token=policy)
    response = ResourceViewSet.as_view({"get": "list"})(request, resource_type="Observation")
    assert response.status_code == 200, response.data
    return orjson.loads(response.render().content)


@pytest.mark.django_db
def test_a_patient_scoped_search_costs_no_more_queries_than_an_unscoped_one(
    fifty_thousand, staff_user, without_audit, django_assert_num_queries
):
    """One query, the page with its total, whether the policy narrows the search or not."""
    code = f"{LOINC}|{CODES[3]}"
    search_as(staff_user, None, code=code)  # warm up per-process caches
    with django_assert_num_queries(1):
        everyone = search_as(staff_user, None, code=code, _count=5)
    with django_assert_num_queries(1):
        scoped = search_as(AnonymousUser(), PATIENT_SCOPED, code=code, _count=5)
    assert everyone["total"] == PATIENTS * OBSERVATIONS_PER_PATIENT // len(CODES)
    assert scoped["total"] == OBSERVATIONS_PER_PATIENT // len(CODES)
    assert {e["resource"]["subject"]["reference"] for e in scoped["entry"]} == {"Patient/p7"}
    with django_assert_num_queries(1):
        all_of_p7 = search_as(AnonymousUser(), PATIENT_SCOPED, _count=100)
    assert all_of_p7["total"] == len(all_of_p7["entry"]) == OBSERVATIONS_PER_PATIENT


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are PostgreSQL's")
def test_patient_and_code_search_uses_indexes_on_postgresql(fifty_thousand):
    matches = find_matches("Observation", [("patient", "p7"), ("code", f"{LOINC}|{CODES[3]}")])
    plan = matches.order_by("-last_updated", "-id")[:20].explain()
    assert "Index" in plan, plan
    for table in ("fhir_api_resource", "fhir_api_tokenindex", "fhir_api_referenceindex"):
        assert f"Seq Scan on {table}" not in plan, plan


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are PostgreSQL's")
def test_the_patient_scope_filter_uses_the_compartment_index_on_postgresql(fifty_thousand):
    narrow = narrow_q(PATIENT_SCOPED, "Observation", "s")
    matches = find_matches("Observation", [("code", f"{LOINC}|{CODES[3]}")], narrow=narrow)
    plan = matches.order_by("-last_updated", "-id")[:20].explain()
    for table in ("fhir_api_resource", "fhir_api_tokenindex", "fhir_api_compartmentmembership"):
        assert f"Seq Scan on {table}" not in plan, plan
