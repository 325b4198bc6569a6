"""Every error is an OperationOutcome with the right status, and a failed write changes nothing."""

import pytest

from fhir_api.models import Resource, ResourceVersion
from tests.conftest import FHIR_JSON

pytestmark = pytest.mark.django_db

PATIENT = {"resourceType": "Patient", "name": [{"family": "Chalmers"}]}


def assert_outcome(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    if code:
        assert body["issue"][0]["code"] == code
    return body["issue"][0]


def test_malformed_json_is_400(fhir):
    response = fhir.post("/fhir/Patient", b"{not json", content_type=FHIR_JSON)
    assert_outcome(response, 400, "structure")
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_failed_validation_is_422_naming_the_element(fhir):
    bad = {"resourceType": "Patient", "birthDate": "last tuesday"}
    issue = assert_outcome(fhir.post_resource("/fhir/Patient", bad), 422, "processing")
    assert issue["expression"] == ["Patient.birthDate"]
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_unknown_element_is_422_naming_it(fhir):
    bad = PATIENT | {"favouriteColour": "blue"}
    issue = assert_outcome(fhir.post_resource("/fhir/Patient", bad), 422)
    assert "Patient.favouriteColour" in issue["expression"]


def test_missing_required_element_is_422(fhir):
    issue = assert_outcome(
        fhir.post_resource("/fhir/Observation", {"resourceType": "Observation", "status": "final"}),
        422,
    )
    assert "Observation.code" in issue["expression"]


def test_resource_type_not_matching_url_is_400(fhir):
    assert_outcome(fhir.post_resource("/fhir/Observation", PATIENT), 400)


def test_body_that_is_not_an_object_is_400(fhir):
    assert_outcome(fhir.post("/fhir/Patient", b"[1, 2]", content_type=FHIR_JSON), 400)


def test_unknown_type_is_404(fhir):
    assert_outcome(fhir.get("/fhir/Spaceship/1"), 404, "not-found")
    assert_outcome(fhir.get("/fhir/Spaceship"), 404, "not-found")
    assert_outcome(fhir.post_resource("/fhir/Spaceship", {"resourceType": "Spaceship"}), 404)


def test_type_removed_in_r4b_is_unknown(fhir):
    assert_outcome(fhir.get("/fhir/MedicinalProduct"), 404)


def test_missing_resource_is_404(fhir):
    assert_outcome(fhir.get("/fhir/Patient/nobody"), 404, "not-found")
    assert_outcome(fhir.get("/fhir/Patient/nobody/_history/1"), 404)
    assert_outcome(fhir.get("/fhir/Patient/nobody/_history"), 404)


def test_unknown_version_is_404(fhir):
    created = fhir.post_resource("/fhir/Patient", PATIENT).json()
    assert_outcome(fhir.get(f"/fhir/Patient/{created['id']}/_history/7"), 404)
    assert_outcome(fhir.get(f"/fhir/Patient/{created['id']}/_history/abc"), 404)


def test_unknown_search_parameter_is_400_unless_lenient(fhir):
    assert_outcome(fhir.get("/fhir/Patient", {"shoe-size": "9"}), 400)
    lenient = fhir.get("/fhir/Patient", {"shoe-size": "9"}, headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert "shoe-size" not in lenient.json()["link"][0]["url"]


def test_unsupported_media_type_is_415(fhir):
    response = fhir.post("/fhir/Patient", b"<Patient/>", content_type="application/fhir+xml")
    assert_outcome(response, 415, "not-supported")
    assert Resource.objects.exclude(resource_type="AuditEvent").count() == 0


def test_method_not_allowed_is_405(fhir):
    created = fhir.post_resource("/fhir/Patient", PATIENT).json()
    assert_outcome(fhir.patch(f"/fhir/Patient/{created['id']}"), 405, "not-supported")
    assert_outcome(fhir.delete("/fhir/Patient"), 405)


def test_unknown_path_under_fhir_is_404_outcome(fhir):
    assert_outcome(fhir.get("/fhir/Patient/1/_history/1/extra"), 404)


def test_failed_update_changes_nothing(fhir):
    created = fhir.post_resource("/fhir/Patient", PATIENT).json()
    bad = created | {"birthDate": "not a date"}
    assert_outcome(fhir.put_resource(f"/fhir/Patient/{created['id']}", bad), 422)
    assert ResourceVersion.objects.filter(resource_type="Patient").count() == 1
    assert fhir.get(f"/fhir/Patient/{created['id']}").json() == created


def test_anonymous_request_is_401_with_bearer_challenge(client):
    response = client.get("/fhir/Patient")
    assert_outcome(response, 401, "login")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_non_staff_user_is_403(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("someone", password="pw"))
    assert_outcome(client.get("/fhir/Patient"), 403, "forbidden")


def test_metadata_is_public(client):
    assert client.get("/fhir/metadata").status_code == 200
