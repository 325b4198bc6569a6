"""read, vread, create, update, delete and their HTTP details, through the REST API."""

import pytest
from django.conf import settings

from tests.conftest import FHIR_JSON, load_example

pytestmark = pytest.mark.django_db

BASE = settings.FHIR["BASE_URL"]
PATIENT = {"resourceType": "Patient", "name": [{"family": "Chalmers", "given": ["Peter"]}]}


def create_patient(fhir, resource=PATIENT):
    response = fhir.post_resource("/fhir/Patient", resource)
    assert response.status_code == 201, response.content
    return response


def test_create_assigns_id_and_returns_location_etag_last_modified(fhir):
    response = create_patient(fhir, PATIENT | {"id": "client-chosen"})
    body = response.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert response["Location"] == f"{BASE}/Patient/{body['id']}/_history/1"
    assert response["ETag"] == 'W/"1"'
    assert response["Last-Modified"].endswith("GMT")
    assert response["Content-Type"].startswith(FHIR_JSON)


def test_read_returns_the_stored_resource(fhir):
    created = create_patient(fhir).json()
    response = fhir.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response["ETag"] == 'W/"1"'


def test_update_makes_a_new_version_and_vread_returns_each(fhir):
    created = create_patient(fhir).json()
    changed = created | {"gender": "male"}
    response = fhir.put_resource(f"/fhir/Patient/{created['id']}", changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response["ETag"] == 'W/"2"'
    first = fhir.get(f"/fhir/Patient/{created['id']}/_history/1").json()
    second = fhir.get(f"/fhir/Patient/{created['id']}/_history/2").json()
    assert "gender" not in first
    assert second["gender"] == "male"


def test_update_ignores_client_meta_version(fhir):
    created = create_patient(fhir).json()
    changed = created | {"meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z"}}
    body = fhir.put_resource(f"/fhir/Patient/{created['id']}", changed).json()
    assert body["meta"]["versionId"] == "2"
    assert body["meta"]["lastUpdated"] != "2000-01-01T00:00:00Z"


def test_update_creates_when_id_is_new(fhir):
    response = fhir.put_resource("/fhir/Patient/new-id", PATIENT | {"id": "new-id"})
    assert response.status_code == 201
    assert response["Location"] == f"{BASE}/Patient/new-id/_history/1"
    assert fhir.get("/fhir/Patient/new-id").status_code == 200


def test_update_with_stale_if_match_is_412_and_changes_nothing(fhir):
    created = create_patient(fhir).json()
    url = f"/fhir/Patient/{created['id']}"
    fhir.put_resource(url, created | {"gender": "male"})
    response = fhir.put_resource(url, created | {"gender": "female"}, if_match='W/"1"')
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert fhir.get(url).json()["gender"] == "male"


def test_update_with_current_if_match_succeeds(fhir):
    created = create_patient(fhir).json()
    url = f"/fhir/Patient/{created['id']}"
    response = fhir.put_resource(url, created | {"gender": "male"}, if_match='W/"1"')
    assert response.status_code == 200


def test_update_with_mismatched_body_id_is_400(fhir):
    created = create_patient(fhir).json()
    response = fhir.put_resource(f"/fhir/Patient/{created['id']}", created | {"id": "other"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "structure"


def test_update_without_body_id_is_400(fhir):
    response = fhir.put_resource("/fhir/Patient/abc", PATIENT)
    assert response.status_code == 400


def test_delete_then_read_is_410_and_vread_of_delete_is_410(fhir):
    created = create_patient(fhir).json()
    url = f"/fhir/Patient/{created['id']}"
    assert fhir.delete(url).status_code == 204
    gone = fhir.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert fhir.get(f"{url}/_history/2").status_code == 410
    assert fhir.get(f"{url}/_history/1").status_code == 200


def test_delete_of_unknown_resource_succeeds(fhir):
    assert fhir.delete("/fhir/Patient/never-was").status_code == 204


def test_put_on_deleted_resource_brings_it_back(fhir):
    created = create_patient(fhir).json()
    url = f"/fhir/Patient/{created['id']}"
    fhir.delete(url)
    response = fhir.put_resource(url, created)
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"
    assert fhir.get(url).status_code == 200


def test_deleted_resource_disappears_from_search(fhir):
    created = create_patient(fhir).json()
    fhir.delete(f"/fhir/Patient/{created['id']}")
    bundle = fhir.get("/fhir/Patient", {"_id": created["id"]}).json()
    assert bundle["total"] == 0


def test_prefer_return_minimal_sends_no_body(fhir):
    response = fhir.post_resource("/fhir/Patient", PATIENT, prefer="return=minimal")
    assert response.status_code == 201
    assert response.content == b""
    assert response["Location"]


def test_json_accept_and_format_parameter(fhir):
    created = create_patient(fhir).json()
    url = f"/fhir/Patient/{created['id']}"
    assert fhir.get(url, headers={"Accept": "application/json"})["Content-Type"].startswith(
        "application/json"
    )
    assert fhir.get(url, {"_format": "json"})["Content-Type"].startswith(FHIR_JSON)
    assert fhir.get(url, {"_format": "application/fhir+json"}).json()["id"] == created["id"]
    assert fhir.get(url, {"_format": "xml"}).status_code == 406


def test_browser_gets_the_browsable_api(fhir):
    created = create_patient(fhir).json()
    response = fhir.get(f"/fhir/Patient/{created['id']}", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Chalmers" in response.content


def test_real_example_round_trips(fhir):
    example = load_example("observation-example.json")
    response = fhir.put_resource(f"/fhir/Observation/{example['id']}", example)
    assert response.status_code == 201, response.content
    stored = fhir.get(f"/fhir/Observation/{example['id']}").json()
    assert stored.pop("meta")["versionId"] == "1"
    example.pop("meta", None)
    assert stored == example
