"""history Bundles of an instance, a type and the whole system (http.html#history)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

BASE = settings.FHIR["BASE_URL"]
PATIENT = {"resourceType": "Patient", "name": [{"family": "Chalmers"}]}


@pytest.fixture
def changed_patient(fhir):
    """Patient/p1 created, updated and deleted: three versions."""
    fhir.put_resource("/fhir/Patient/p1", PATIENT | {"id": "p1"})
    fhir.put_resource("/fhir/Patient/p1", PATIENT | {"id": "p1", "gender": "male"})
    fhir.delete("/fhir/Patient/p1")
    return "p1"


def relative(url):
    """A link as the path and query the test client can GET."""
    assert url.startswith(BASE + "/")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_instance_history_lists_versions_newest_first_with_the_delete(fhir, changed_patient):
    response = fhir.get("/fhir/Patient/p1/_history")
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "history"
    assert body["total"] == 3
    deleted, updated, created = body["entry"]

    assert deleted["fullUrl"] == f"{BASE}/Patient/p1"
    assert "resource" not in deleted
    assert deleted["request"] == {"method": "DELETE", "url": "Patient/p1"}
    assert deleted["response"]["status"] == "204 No Content"
    assert deleted["response"]["etag"] == 'W/"3"'

    assert updated["resource"]["gender"] == "male"
    assert updated["resource"]["meta"]["versionId"] == "2"
    assert updated["request"] == {"method": "PUT", "url": "Patient/p1"}
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["lastModified"] == updated["resource"]["meta"]["lastUpdated"]

    assert created["resource"]["meta"]["versionId"] == "1"
    assert created["response"] == {
        "status": "201 Created",
        "etag": 'W/"1"',
        "lastModified": created["resource"]["meta"]["lastUpdated"],
    }


def test_created_by_post_is_recorded_as_post_to_the_type(fhir):
    created = fhir.post_resource("/fhir/Patient", PATIENT).json()
    entry = fhir.get(f"/fhir/Patient/{created['id']}/_history").json()["entry"][0]
    assert entry["request"] == {"method": "POST", "url": "Patient"}
    assert entry["response"]["status"] == "201 Created"
    assert entry["resource"] == created


def test_type_and_system_history(without_audit, fhir, changed_patient):
    fhir.post_resource("/fhir/Practitioner", {"resourceType": "Practitioner"})
    patients = fhir.get("/fhir/Patient/_history").json()
    assert patients["total"] == 3
    assert {e["fullUrl"] for e in patients["entry"]} == {f"{BASE}/Patient/p1"}
    everything = fhir.get("/fhir/_history").json()
    assert everything["total"] == 4
    assert everything["entry"][0]["request"]["url"] == "Practitioner"


def test_paging_links_are_absolute_and_walk_every_version(fhir, changed_patient):
    first = fhir.get("/fhir/Patient/p1/_history?_count=2").json()
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "next"}
    assert links["self"].startswith(f"{BASE}/Patient/p1/_history?")
    assert [e["response"]["etag"] for e in first["entry"]] == ['W/"3"', 'W/"2"']

    second = fhir.get(relative(links["next"])).json()
    assert [e["response"]["etag"] for e in second["entry"]] == ['W/"1"']
    links = {link["relation"]: link["url"] for link in second["link"]}
    assert set(links) == {"self", "previous"}
    assert parse_qs(urlsplit(links["previous"]).query)["_offset"] == ["0"]


def test_since_filters_and_is_kept_in_the_links(without_audit, fhir, changed_patient):
    versions = fhir.get("/fhir/Patient/p1/_history").json()["entry"]
    since = versions[1]["response"]["lastModified"]  # the update
    body = fhir.get("/fhir/_history", {"_since": since, "_count": 1}).json()
    # Versions written within one millisecond share a lastModified.
    assert body["total"] == sum(v["response"]["lastModified"] >= since for v in versions)
    assert body["total"] >= 2
    links = {link["relation"]: link["url"] for link in body["link"]}
    assert parse_qs(urlsplit(links["next"]).query)["_since"] == [since]
    assert links["next"].startswith(f"{BASE}/_history?")


def test_empty_history_has_no_entries(fhir):
    body = fhir.get("/fhir/Patient/_history").json()
    assert body["total"] == 0
    assert "entry" not in body


def test_history_of_an_unknown_resource_is_404(fhir):
    assert fhir.get("/fhir/Patient/nobody/_history").status_code == 404
