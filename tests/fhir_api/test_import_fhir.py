"""manage.py import_fhir: Bundle, NDJSON and folder imports, and what it reports."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from fhir_api import store
from fhir_api.exceptions import FhirError
from fhir_api.models import Resource
from fhir_api.validation import check_id, check_resource, check_resource_type
from tests.conftest import EXAMPLES_DIR

pytestmark = pytest.mark.django_db

PATIENT_URN = "urn:uuid:9a0e2f4c-0000-4000-8000-000000000001"


def import_fhir(*paths):
    """Run the command; (stdout, stderr, error or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_fhir", *map(str, paths), stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def transaction_bundle(value="70"):
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": PATIENT_URN,
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "weight"},
                    "valueQuantity": {"value": value},
                    "subject": {"reference": PATIENT_URN},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def test_transaction_bundle_file_is_imported_with_references_rewritten(tmp_path):
    out, err, error = import_fhir(write_json(tmp_path / "bundle.json", transaction_bundle()))
    assert error is None, err
    assert "Imported 2 resources from 1 files" in out
    assert "resources/s" in out
    patient = Resource.objects.get(resource_type="Patient")
    observation = json.loads(Resource.objects.get(resource_type="Observation").content)
    assert observation["subject"]["reference"] == f"Patient/{patient.fhir_id}"


def test_failed_transaction_file_stores_nothing_and_names_the_entry(tmp_path):
    path = write_json(tmp_path / "bad.json", transaction_bundle(value="heavy"))
    out, err, error = import_fhir(path)
    assert error is not None
    assert f"{path}: Bundle.entry[1]:" in err
    assert "0 resources" in out
    assert Resource.objects.count() == 0


def test_ndjson_bad_lines_are_reported_by_line_and_skipped(tmp_path):
    lines = [
        json.dumps({"resourceType": "Patient", "id": "p1"}),
        json.dumps({"resourceType": "Patient", "id": "p2", "birthDate": "not-a-date"}),
        "",
        "{not json",
        json.dumps({"resourceType": "Patient", "id": "p3"}),
        json.dumps({"resourceType": "Patient"}),
    ]
    path = tmp_path / "Patient.ndjson"
    path.write_text("\n".join(lines) + "\n")
    out, err, error = import_fhir(path)
    assert error is not None
    assert f"{path}: line 2: Patient.birthDate" in err
    assert f"{path}: line 4: not valid JSON" in err
    assert "Imported 3 resources" in out
    assert "2 failed" in out
    ids = set(Resource.objects.values_list("fhir_id", flat=True))
    assert {"p1", "p3"} <= ids
    assert "p2" not in ids


def test_ndjson_is_stored_in_batches(tmp_path):
    path = tmp_path / "many.ndjson"
    path.write_text(
        "".join(
            json.dumps({"resourceType": "Basic", "id": f"b{i}", "code": {"text": "x"}}) + "\n"
            for i in range(7)
        )
    )
    _, err, error = import_fhir(path, "--batch-size", "3")
    assert error is None, err
    assert Resource.objects.count() == 7


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_fhir", str(tmp_path / "nothing.json"))


def test_official_r4_examples_round_trip(tmp_path):
    """Every example R4B accepts is stored and read back as it was; the rest are reported."""
    _, err, error = import_fhir(EXAMPLES_DIR)
    assert error is not None  # the types R4B removed cannot be stored
    for removed in ("MedicinalProduct", "EffectEvidenceSynthesis", "SubstanceSpecification"):
        assert f"-example.json: Resource type '{removed}' is not supported" in err
    assert "ussg-fht.json: Bundle.entry[0]: request.url http://hl7.org/" in err

    expected = _expected_store(sorted(EXAMPLES_DIR.rglob("*.json")))
    assert len(expected) > 500
    mismatched = [
        key
        for key, resource in expected.items()
        if _without_version(json.loads(store.read(*key).content)) != _without_version(resource)
    ]
    assert mismatched == []


def _expected_store(paths):
    """(type, id) -> resource, for what import_fhir stores under its own id, in its order."""
    expected = {}
    for path in paths:
        data = json.loads(path.read_text())
        if data.get("resourceType") == "Bundle" and data.get("type") == "transaction":
            continue  # ids are assigned by the server
        if data.get("resourceType") == "Bundle" and data.get("type") in ("collection", "searchset"):
            resources = [e.get("resource") for e in data.get("entry", [])]
        else:
            resources = [data]
        for resource in resources:
            if not resource or not resource.get("id"):
                continue
            try:
                check_resource_type(resource["resourceType"])
                check_id(resource["id"])
                check_resource(resource["resourceType"], resource)
            except FhirError:
                continue
            expected[(resource["resourceType"], resource["id"])] = resource
    return expected


def _without_version(resource):
    resource = dict(resource)
    meta = {
        k: v for k, v in resource.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")
    }
    if meta:
        resource["meta"] = meta
    return resource


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="forked processes need a database of their own connections (an in-memory SQLite "
    "test database lives in this process only)",
)
def test_jobs_load_files_in_parallel_with_the_same_outcome(tmp_path):
    for number in range(4):
        write_json(tmp_path / f"bundle-{number}.json", transaction_bundle(value=f"{70 + number}"))
    write_json(tmp_path / "bad.json", transaction_bundle(value="heavy"))
    out, err, error = import_fhir(tmp_path, "--jobs", "2")
    assert error is not None
    assert f"{tmp_path / 'bad.json'}: Bundle.entry[1]:" in err
    assert "Imported 8 resources from 5 files" in out and "2 failed" in out
    assert Resource.objects.filter(resource_type="Patient").count() == 4
    values = [
        json.loads(content)["valueQuantity"]["value"]
        for content in Resource.objects.filter(resource_type="Observation").values_list(
            "content", flat=True
        )
    ]
    assert sorted(values) == ["70", "71", "72", "73"]


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(CommandError, match="--jobs must be 1 or more"):
        call_command("import_fhir", str(tmp_path), "--jobs", "0")
