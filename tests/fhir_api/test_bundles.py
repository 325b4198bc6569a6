"""Batch and transaction Bundles POSTed to the base (http.html#transaction)."""

import pytest
from django.conf import settings
from django.test import override_settings

from fhir_api.models import Resource

pytestmark = pytest.mark.django_db

BASE = settings.FHIR["BASE_URL"]
MRN = "http://hospital.example.org/mrn"
PATIENT_URN = "urn:uuid:9a0e2f4c-0000-4000-8000-000000000001"


def patient(mrn="12345", **extra):
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": "Chalmers", "given": ["Peter"]}],
    } | extra


def observation(subject, **extra):
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2951-2"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 138, "unit": "mmol/L"},
    } | extra


def entry(method, url, resource=None, full_url=None, **request):
    item = {"request": {"method": method, "url": url} | request}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def bundle(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_bundle(fhir, data):
    return fhir.post_resource("/fhir", data)


def id_from_location(location):
    # {BASE}/Type/id/_history/1
    assert location.startswith(BASE + "/")
    return location[len(BASE) + 1 :].split("/")[1]


# --- transaction ---------------------------------------------------------------------------


def test_transaction_rewrites_urn_uuid_references_to_the_new_ids(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(PATIENT_URN), "urn:uuid:obs-1"),
            entry("POST", "Patient", patient(), PATIENT_URN),
        ),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "transaction-response"
    obs_response, patient_response = (e["response"] for e in body["entry"])
    assert obs_response["status"] == patient_response["status"] == "201 Created"
    assert patient_response["location"].startswith(f"{BASE}/Patient/")
    assert patient_response["location"].endswith("/_history/1")
    assert patient_response["etag"] == 'W/"1"'
    assert patient_response["lastModified"].endswith("Z")
    patient_id = id_from_location(patient_response["location"])
    obs_id = id_from_location(obs_response["location"])

    stored = fhir.get(f"/fhir/Observation/{obs_id}").json()
    assert stored["subject"] == {"reference": f"Patient/{patient_id}"}
    found = fhir.get(f"/fhir/Observation?patient={patient_id}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [obs_id]


def test_transaction_runs_deletes_then_posts_then_puts_then_gets(fhir):
    fhir.put_resource("/fhir/Patient/old", patient("old") | {"id": "old"})
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("GET", f"Patient?identifier={MRN}|new"),
            entry("PUT", "Patient/put-me", patient("put") | {"id": "put-me"}),
            entry("POST", "Patient", patient("new")),
            entry("DELETE", "Patient/old"),
        ),
    )
    assert response.status_code == 200, response.content
    get, put, post, delete = response.json()["entry"]
    assert get["response"]["status"] == "200 OK"
    assert get["resource"]["type"] == "searchset"
    assert get["resource"]["total"] == 1  # the POST ran before the GET
    assert put["response"]["status"] == "201 Created"
    assert post["response"]["status"] == "201 Created"
    assert delete["response"]["status"] == "204 No Content"
    assert fhir.get("/fhir/Patient/old").status_code == 410


def test_transaction_with_a_bad_entry_stores_nothing(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), PATIENT_URN),
            entry("POST", "Observation", observation(PATIENT_URN, valueQuantity={"value": "abc"})),
        ),
    )
    assert response.status_code in (400, 422)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource")
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_transaction_failing_late_rolls_back_earlier_writes(fhir):
    """The GET runs last, after the writes, and its 404 undoes them."""
    response = post_bundle(
        fhir,
        bundle("transaction", entry("POST", "Patient", patient()), entry("GET", "Patient/nobody")),
    )
    assert response.status_code == 404
    assert "Bundle.entry[1]" in response.json()["issue"][0]["diagnostics"]
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_transaction_stale_if_match_is_412_and_changes_nothing(fhir):
    fhir.put_resource("/fhir/Patient/p1", patient() | {"id": "p1"})
    fhir.put_resource("/fhir/Patient/p1", patient(gender="male") | {"id": "p1"})
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient("other")),
            entry("PUT", "Patient/p1", patient(gender="female") | {"id": "p1"}, ifMatch='W/"1"'),
        ),
    )
    assert response.status_code == 412
    assert fhir.get("/fhir/Patient/p1").json()["gender"] == "male"
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 1


def test_conditional_create_in_a_transaction_reuses_the_match(fhir):
    existing = fhir.post_resource("/fhir/Patient", patient()).json()
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), PATIENT_URN, ifNoneExist=f"identifier={MRN}|12345"),
            entry("POST", "Observation", observation(PATIENT_URN)),
        ),
    )
    assert response.status_code == 200, response.content
    patient_entry, obs_entry = response.json()["entry"]
    assert patient_entry["response"]["status"] == "200 OK"
    assert patient_entry["response"]["location"] == f"{BASE}/Patient/{existing['id']}/_history/1"
    obs_id = id_from_location(obs_entry["response"]["location"])
    stored = fhir.get(f"/fhir/Observation/{obs_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{existing['id']}"
    assert Resource.objects.filter(resource_type="Patient").count() == 1


def test_conditional_create_without_a_match_creates(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), ifNoneExist=f"Patient?identifier={MRN}|12345"),
        ),
    )
    assert response.json()["entry"][0]["response"]["status"] == "201 Created"


def test_conditional_create_matching_several_is_412(fhir):
    fhir.post_resource("/fhir/Patient", patient())
    fhir.post_resource("/fhir/Patient", patient())
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), ifNoneExist=f"identifier={MRN}|12345"),
        ),
    )
    assert response.status_code == 412
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 2


def test_conditional_references_resolve_to_the_one_match(fhir):
    existing = fhir.post_resource("/fhir/Patient", patient()).json()
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(f"Patient?identifier={MRN}|12345")),
        ),
    )
    assert response.status_code == 200, response.content
    obs_id = id_from_location(response.json()["entry"][0]["response"]["location"])
    stored = fhir.get(f"/fhir/Observation/{obs_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{existing['id']}"


def test_conditional_reference_without_a_match_fails(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(f"Patient?identifier={MRN}|none")),
        ),
    )
    assert response.status_code == 400
    assert "matches no resource" in response.json()["issue"][0]["diagnostics"]


def test_conditional_update_creates_then_updates(fhir):
    url = f"Patient?identifier={MRN}|777"
    first = post_bundle(fhir, bundle("transaction", entry("PUT", url, patient("777"))))
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    second = post_bundle(
        fhir, bundle("transaction", entry("PUT", url, patient("777", gender="other")))
    )
    location = second.json()["entry"][0]["response"]["location"]
    assert second.json()["entry"][0]["response"]["status"] == "200 OK"
    assert location.endswith("/_history/2")
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 1


def test_conditional_delete_deletes_the_match(fhir):
    created = fhir.post_resource("/fhir/Patient", patient()).json()
    response = post_bundle(
        fhir, bundle("transaction", entry("DELETE", f"Patient?identifier={MRN}|12345"))
    )
    assert response.json()["entry"][0]["response"]["status"] == "204 No Content"
    assert fhir.get(f"/fhir/Patient/{created['id']}").status_code == 410


def test_duplicate_full_urls_are_rejected(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), PATIENT_URN),
            entry("POST", "Patient", patient(), PATIENT_URN),
        ),
    )
    assert response.status_code == 400
    assert "fullUrl" in response.json()["issue"][0]["diagnostics"]
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_two_entries_changing_one_resource_are_rejected(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "transaction",
            entry("PUT", "Patient/same", patient() | {"id": "same"}),
            entry("DELETE", "Patient/same"),
        ),
    )
    assert response.status_code == 400
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_transaction_reads_and_vreads(fhir):
    fhir.put_resource("/fhir/Patient/p1", patient() | {"id": "p1"})
    fhir.put_resource("/fhir/Patient/p1", patient(gender="male") | {"id": "p1"})
    response = post_bundle(
        fhir,
        bundle(
            "transaction", entry("GET", "Patient/p1"), entry("GET", f"{BASE}/Patient/p1/_history/1")
        ),
    )
    read, vread = response.json()["entry"]
    assert read["resource"]["gender"] == "male"
    assert read["response"]["etag"] == 'W/"2"'
    assert read["fullUrl"] == f"{BASE}/Patient/p1"
    assert "gender" not in vread["resource"]


# --- batch ---------------------------------------------------------------------------------


def test_batch_stores_good_entries_and_reports_the_bad_one(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "batch",
            entry("POST", "Patient", patient()),
            entry("POST", "Observation", observation("Patient/x", valueQuantity={"value": "abc"})),
            entry("GET", "Patient/nobody"),
            entry("PUT", "Patient/p2", patient("2") | {"id": "p2"}),
        ),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "batch-response"
    created, invalid, missing, updated = (e["response"] for e in body["entry"])
    assert created["status"] == "201 Created"
    assert invalid["status"] == "422 Unprocessable Entity"
    assert invalid["outcome"]["resourceType"] == "OperationOutcome"
    assert "Observation.valueQuantity.value" in invalid["outcome"]["issue"][0]["diagnostics"]
    assert missing["status"] == "404 Not Found"
    assert updated["status"] == "201 Created"
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 2


def test_batch_does_not_rewrite_references_between_entries(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "batch",
            entry("POST", "Patient", patient(), PATIENT_URN),
            entry("POST", "Observation", observation(PATIENT_URN)),
        ),
    )
    obs_id = id_from_location(response.json()["entry"][1]["response"]["location"])
    assert fhir.get(f"/fhir/Observation/{obs_id}").json()["subject"]["reference"] == PATIENT_URN


def test_batch_entry_with_a_malformed_request_gets_its_own_error(fhir):
    response = post_bundle(
        fhir,
        bundle(
            "batch",
            {"resource": patient()},
            entry("PATCH", "Patient/x"),
            entry("POST", "Unknown"),
            entry("POST", "Patient", patient()),
        ),
    )
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["400 Bad Request", "400 Bad Request", "404 Not Found", "201 Created"]


# --- the Bundle itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "batch", "entry": {"not": "a list"}},
        [1, 2],
    ],
)
def test_only_batch_or_transaction_bundles_are_accepted(fhir, data):
    response = post_bundle(fhir, data)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_too_many_entries_are_rejected(fhir):
    with override_settings(FHIR=settings.FHIR | {"MAX_BUNDLE_ENTRIES": 2}):
        response = post_bundle(fhir, bundle("batch", *[entry("POST", "Patient", patient())] * 3))
    assert response.status_code == 400
    assert "at most 2" in response.json()["issue"][0]["diagnostics"]


def test_empty_batch_gets_an_empty_response(fhir):
    response = post_bundle(fhir, bundle("batch"))
    assert response.status_code == 200
    assert response.json() == {"resourceType": "Bundle", "type": "batch-response"}
