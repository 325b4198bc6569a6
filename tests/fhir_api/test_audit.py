"""The audit trail of the FHIR API: every read, search and write leaves an R4 AuditEvent
(IHE BALP), errors included, with one write per request; nobody alters the trail through the
API."""

import base64
import logging

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.auditevent import AuditEvent

from fhir_api import audit, audit_log
from fhir_api.capabilities import capability_statement
from fhir_api.models import QueuedAuditEvent, Resource

pytestmark = pytest.mark.django_db

PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Lovelace"}]}
OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"text": "weight"},
    "subject": {"reference": "Patient/p1"},
}
INTERACTION = "http://hl7.org/fhir/restful-interaction"
NEW_OBSERVATION = {key: value for key, value in OBSERVATION.items() if key != "id"}


@pytest.fixture
def record(fhir):
    """Patient/p1 and Observation/o1 in p1's compartment, with their own events cleared."""
    fhir.put_resource("/fhir/Patient/p1", PATIENT)
    fhir.put_resource("/fhir/Observation/o1", OBSERVATION)
    audit_log.drain()
    Resource.objects.filter(resource_type="AuditEvent").delete()


def events():
    """Every AuditEvent recorded, oldest first."""
    audit_log.drain()
    rows = Resource.objects.filter(resource_type="AuditEvent").order_by("id")
    return [orjson.loads(row.content) for row in rows]


def last_event():
    return events()[-1]


def subtype(event):
    return event["subtype"][0]["code"]


def references(event, role_code):
    return [
        entity["what"].get("reference")
        for entity in event.get("entity", [])
        if entity.get("role", {}).get("code") == role_code
    ]


def patients(event):
    return references(event, "1")


def query_of(event):
    (query,) = [e["query"] for e in event["entity"] if e.get("role", {}).get("code") == "24"]
    return base64.b64decode(query).decode()


# --- Building ---------------------------------------------------------------------------------


def test_each_kind_of_rest_event_is_valid_r4():
    """A sample of every interaction's event validates as an R4(B) AuditEvent."""
    common = {
        "username": "osler",
        "fhir_user": "Practitioner/prac-1",
        "client_id": "app-1",
        "address": "192.0.2.10",
    }
    samples = [
        audit.rest_event("read", resource_type="Observation", fhir_id="o1", patients={"p1"}),
        audit.rest_event("vread", resource_type="Patient", fhir_id="p1", patients={"p1"}),
        audit.rest_event("search-type", resource_type="Observation", query="/fhir/Observation"),
        audit.rest_event("create", resource_type="Observation", fhir_id="o2", patients={"p1"}),
        audit.rest_event("update", resource_type="Observation", fhir_id="o1"),
        audit.rest_event(
            "delete", resource_type="Observation", fhir_id="o1", outcome="4", outcome_desc="gone"
        ),
        audit.rest_event("history-system", query="/fhir/_history"),
        audit.rest_event(
            "transaction",
            entities=[audit.resource_entity({"reference": "Patient/p9"}, description="POST")],
            patients={"p9"},
        ),
    ]
    for event in samples:
        AuditEvent.model_validate(event)
    for event in [audit.rest_event("read", resource_type="Patient", fhir_id="p1", **common)]:
        AuditEvent.model_validate(event)


def test_a_read_event_follows_balp_read_with_a_patient():
    event = audit.rest_event(
        "read",
        resource_type="Observation",
        fhir_id="o1",
        patients={"p1"},
        username="osler",
        fhir_user="Practitioner/prac-1",
        client_id="app-1",
        address="192.0.2.10",
    )
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [{"system": INTERACTION, "code": "read", "display": "read"}]
    assert (event["action"], event["outcome"]) == ("R", "0")
    person, app, server = event["agent"]
    assert person["who"]["reference"] == "Practitioner/prac-1"
    assert person["who"]["identifier"]["value"] == "osler"
    assert person["requestor"] is True
    assert app["who"]["identifier"]["value"] == "app-1"
    assert app["network"] == {"address": "192.0.2.10", "type": "2"}
    # BALP Read: data flows to the client, so the client is the destination.
    assert app["type"]["coding"][0]["code"] == "110152"
    assert server["type"]["coding"][0]["code"] == "110153"
    data, patient = event["entity"]
    assert data["what"] == {"reference": "Observation/o1"}
    assert (patient["what"], patient["role"]["code"]) == ({"reference": "Patient/p1"}, "1")


# --- Every interaction, through the API --------------------------------------------------------


def test_a_read_is_audited_with_user_address_resource_and_patient(fhir, record):
    assert fhir.get("/fhir/Observation/o1").status_code == 200
    event = last_event()
    assert (subtype(event), event["action"], event["outcome"]) == ("read", "R", "0")
    assert references(event, "4") == ["Observation/o1"]
    assert patients(event) == ["Patient/p1"]
    person = event["agent"][0]
    assert person["name"] == "staff" and person["requestor"] is True
    session = event["agent"][1]
    assert session["who"] == {"display": "browser session"}
    assert session["network"]["address"] == "127.0.0.1"
    assert event["source"]["observer"]["identifier"]["value"].endswith("/fhir")


@pytest.mark.parametrize(
    ("path", "interaction"),
    [
        ("/fhir/Observation/o1/_history/1", "vread"),
        ("/fhir/Observation/o1/_history", "history-instance"),
        ("/fhir/Observation/_history", "history-type"),
        ("/fhir/_history", "history-system"),
    ],
)
def test_vread_and_history_are_reads(fhir, record, path, interaction):
    assert fhir.get(path).status_code == 200
    event = last_event()
    assert (subtype(event), event["action"], event["outcome"]) == (interaction, "R", "0")


def test_a_search_records_the_raw_query_and_the_patient_it_names(fhir, record):
    response = fhir.get("/fhir/Observation", {"patient": "Patient/p1", "code": "x,y"})
    assert response.status_code == 200
    event = last_event()
    assert (subtype(event), event["action"]) == ("search-type", "E")
    assert query_of(event) == "/fhir/Observation?patient=Patient%2Fp1&code=x%2Cy"
    assert patients(event) == ["Patient/p1"]


def test_only_plain_patient_parameters_name_a_patient(fhir, record):
    params = {"subject:missing": "true", "subject": "Group/g1", "patient:Patient": "p1"}
    fhir.get("/fhir/Observation", params)  # audited, whether or not the search is supported
    assert patients(last_event()) == ["Patient/p1"]


def test_a_post_search_records_its_form_parameters(fhir, record):
    response = fhir.post(
        "/fhir/Patient/_search", "_id=p1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    event = last_event()
    assert subtype(event) == "search-type"
    assert query_of(event) == "/fhir/Patient/_search?_id=p1"
    assert patients(event) == ["Patient/p1"]


def test_create_update_and_delete_are_audited_with_their_patient(fhir, record):
    created = fhir.post_resource("/fhir/Observation", NEW_OBSERVATION)
    assert created.status_code == 201
    new_id = created.json()["id"]
    fhir.put_resource("/fhir/Observation/o1", OBSERVATION | {"status": "amended"})
    assert fhir.delete("/fhir/Observation/o1").status_code == 204
    create, update, delete = events()
    assert (subtype(create), create["action"]) == ("create", "C")
    assert references(create, "4") == [f"Observation/{new_id}"]
    assert (subtype(update), update["action"]) == ("update", "U")
    assert (subtype(delete), delete["action"]) == ("delete", "D")
    for event in (create, update, delete):
        assert patients(event) == ["Patient/p1"]
        assert event["outcome"] == "0"
        assert event["agent"][0]["type"]["coding"][0]["code"] == "AUT"


def test_a_missing_resource_is_audited_as_a_failure(fhir, record):
    assert fhir.get("/fhir/Patient/nobody").status_code == 404
    event = last_event()
    assert (subtype(event), event["outcome"]) == ("read", "4")
    assert "nobody" in event["outcomeDesc"]
    assert patients(event) == ["Patient/nobody"]


def test_a_refused_request_is_audited_as_a_failure(client, django_user_model, record):
    client.force_login(django_user_model.objects.create_user("someone", password="pw"))
    assert client.get("/fhir/Observation/o1").status_code == 403
    event = last_event()
    assert event["outcome"] == "4"
    assert event["agent"][0]["name"] == "someone"


def test_an_anonymous_request_is_audited_with_its_address(client, record):
    assert client.get("/fhir/Patient/p1", REMOTE_ADDR="198.51.100.7").status_code == 401
    event = last_event()
    assert event["outcome"] == "4"
    requestor = [agent for agent in event["agent"] if agent["requestor"]]
    assert requestor[0]["network"]["address"] == "198.51.100.7"
    assert "name" not in requestor[0]


def test_a_write_that_fails_validation_is_audited_and_stores_nothing_else(fhir):
    bad = NEW_OBSERVATION | {"valueQuantity": {"value": "abc"}}
    assert fhir.post_resource("/fhir/Observation", bad).status_code in (400, 422)
    assert not Resource.objects.exclude(resource_type="AuditEvent").exists()
    (event,) = events()
    assert (subtype(event), event["action"], event["outcome"]) == ("create", "C", "4")
    assert "Observation" in event["outcomeDesc"]


def test_the_public_capability_statement_is_not_audited(client, fhir):
    assert client.get("/fhir/metadata").status_code == 200
    assert fhir.get("/fhir/metadata").status_code == 200
    assert events() == []


# --- Batch and transaction ----------------------------------------------------------------------


def bundle(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(method, url, resource=None, full_url=None):
    raw = {"request": {"method": method, "url": url}}
    if resource is not None:
        raw["resource"] = resource
    if full_url:
        raw["fullUrl"] = full_url
    return raw


def test_a_transaction_is_one_event_naming_each_entry_and_patient(fhir, record):
    urn = "urn:uuid:0b4c1b5e-2b1f-4f5e-9d36-3c1c2c8f2a11"
    observation = NEW_OBSERVATION | {"subject": {"reference": urn}}
    response = fhir.post_resource(
        "/fhir",
        bundle(
            "transaction",
            entry("POST", "Patient", {"resourceType": "Patient"}, full_url=urn),
            entry("POST", "Observation", observation),
            entry("GET", "Observation?patient=p1"),
            entry("DELETE", "Observation/o1"),
        ),
    )
    assert response.status_code == 200, response.content
    new_patient = response.json()["entry"][0]["response"]["location"].split("/")[-3]
    (event,) = events()
    assert (subtype(event), event["action"], event["outcome"]) == ("transaction", "E", "0")
    descriptions = [e.get("description") for e in event["entity"] if e["role"]["code"] != "1"]
    assert descriptions == [
        "POST 201 Created",
        "POST 201 Created",
        "GET 200 OK",
        "DELETE 204 No Content",
    ]
    assert patients(event) == [f"Patient/{new_patient}"]


def test_a_rolled_back_transaction_is_audited_and_stores_nothing_else(fhir):
    bad = NEW_OBSERVATION | {"valueQuantity": {"value": "abc"}}
    response = fhir.post_resource(
        "/fhir",
        bundle(
            "transaction",
            entry("PUT", "Patient/p1", PATIENT),
            entry("POST", "Observation", bad),
        ),
    )
    assert response.status_code in (400, 422)
    assert not Resource.objects.exclude(resource_type="AuditEvent").exists()
    (event,) = events()
    assert (subtype(event), event["outcome"]) == ("transaction", "4")
    assert patients(event) == ["Patient/p1"]


def test_a_batch_is_audited_as_a_batch(fhir, record):
    response = fhir.post_resource(
        "/fhir", bundle("batch", entry("GET", "Patient/p1"), entry("GET", "Patient/nobody"))
    )
    assert response.status_code == 200
    event = last_event()
    assert subtype(event) == "batch"
    assert [e.get("description") for e in event["entity"] if e["role"]["code"] == "4"] == [
        "GET 200 OK",
        "GET 404 Not Found",
    ]


# --- The trail cannot be altered through the API --------------------------------------------------


def stored_event_id(fhir, record):
    fhir.get("/fhir/Patient/p1")
    return last_event()["id"]


def test_nobody_creates_changes_or_deletes_audit_events_through_the_api(fhir, record):
    """Staff included: the trail is the server's alone."""
    event_id = stored_event_id(fhir, record)
    stored = fhir.get(f"/fhir/AuditEvent/{event_id}").json()
    attempts = [
        fhir.post_resource("/fhir/AuditEvent", stored),
        fhir.put_resource(f"/fhir/AuditEvent/{event_id}", stored | {"outcome": "0"}),
        fhir.put_resource("/fhir/AuditEvent/new-one", stored | {"id": "new-one"}),
        fhir.delete(f"/fhir/AuditEvent/{event_id}"),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert response.json()["issue"][0]["code"] == "forbidden"
    assert fhir.get(f"/fhir/AuditEvent/{event_id}").json() == stored


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_bundle_writing_an_audit_event_is_refused_whole(fhir, record, kind):
    event_id = stored_event_id(fhir, record)
    before = Resource.objects.filter(resource_type="AuditEvent").count()
    response = fhir.post_resource(
        "/fhir",
        bundle(
            kind,
            entry("PUT", "Patient/p2", PATIENT | {"id": "p2"}),
            entry("DELETE", f"/AuditEvent/{event_id}"),
        ),
    )
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not Resource.objects.filter(fhir_id="p2").exists()
    audit_log.drain()  # the refusal's own event
    assert Resource.objects.filter(resource_type="AuditEvent", deleted=False).count() == before + 1


def test_the_capability_statement_offers_no_audit_event_writes():
    (rest,) = capability_statement()["rest"]
    (entry_,) = [r for r in rest["resource"] if r["type"] == "AuditEvent"]
    codes = {i["code"] for i in entry_["interaction"]}
    assert codes == {"read", "vread", "search-type", "history-instance", "history-type"}
    assert entry_["updateCreate"] is False
    params = {p["name"] for p in entry_["searchParam"]}
    assert {"patient", "date", "type", "subtype", "action", "outcome", "agent"} <= params


# --- Searching the trail ------------------------------------------------------------------------


def test_staff_search_audit_events_by_patient_and_date(fhir, record):
    recorded_before = audit.now_instant()
    fhir.get("/fhir/Observation/o1")
    fhir.get("/fhir/Patient/nobody")
    by_patient = fhir.get("/fhir/AuditEvent", {"patient": "p1"}).json()
    assert [subtype(e["resource"]) for e in by_patient["entry"]] == ["read"]
    since = fhir.get("/fhir/AuditEvent", {"date": f"ge{recorded_before}", "_count": 50}).json()
    # The two reads and the search by patient above.
    assert since["total"] == 3
    failures = fhir.get("/fhir/AuditEvent", {"outcome": "4", "subtype": "read"}).json()
    assert failures["total"] == 1
    assert fhir.get("/fhir/AuditEvent", {"agent-name": "staff", "action": "R"}).json()["total"] == 2
    assert fhir.get("/fhir/AuditEvent", {"entity": "Observation/o1"}).json()["total"] == 1


def test_a_patients_audit_events_are_in_their_compartment(fhir, record):
    from fhir_api.models import CompartmentMembership

    fhir.get("/fhir/Observation/o1")
    event_id = last_event()["id"]
    members = CompartmentMembership.objects.filter(resource_type="AuditEvent")
    assert list(members.values_list("patient_id", "resource__fhir_id")) == [("p1", event_id)]


# --- One write per request, after the response; never lost ------------------------------------


def extra_queries(fhir, path, monkeypatch):
    """The statements auditing adds to GET `path`: the same request with and without it."""
    with monkeypatch.context() as patch:
        patch.setattr(audit_log, "do_record_audit_events", lambda events: None)
        with CaptureQueriesContext(connection) as without:
            assert fhir.get(path).status_code == 200
    with CaptureQueriesContext(connection) as with_audit:
        assert fhir.get(path).status_code == 200
    return [q["sql"] for q in with_audit.captured_queries[len(without) :]]


@pytest.mark.parametrize("path", ["/fhir/Observation/o1", "/fhir/Observation?patient=p1"])
def test_a_read_or_search_gains_exactly_one_write(fhir, record, monkeypatch, path):
    """One INSERT of a queued row; the store's tables are written by a later drain."""
    (statement,) = extra_queries(fhir, path, monkeypatch)
    assert 'INSERT INTO "fhir_api_queuedauditevent"' in statement
    assert statement.count("INSERT") == 1


ON_POSTGRESQL = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's"
)


def store_one_event():
    """Queue a minimal event outside any transaction, as AuditMiddleware does; its SQL."""
    event = {"type": {"code": "rest"}, "recorded": "2026-11-23T10:00:00Z", "agent": []}
    with CaptureQueriesContext(connection) as queries:
        audit_log.do_record_audit_events([event])
    assert QueuedAuditEvent.objects.count() == 1
    return queries.captured_queries[-1]["sql"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_an_audit_write_does_not_wait_for_the_disk_and_nothing_else_is_affected():
    assert store_one_event().startswith("SET LOCAL synchronous_commit TO off; INSERT INTO")
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # LOCAL: the connection's next commit waits


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_an_operator_can_make_audit_writes_wait_for_the_disk(settings):
    settings.FHIR = {**settings.FHIR, "AUDIT_SYNCHRONOUS_COMMIT": True}
    assert store_one_event().startswith("INSERT INTO")


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_with_server_side_binding_the_audit_write_is_one_plain_statement(monkeypatch):
    """Server-side binding takes one statement per query: the write then waits for the disk
    rather than fail (and lose the event)."""
    options = {**connection.settings_dict.get("OPTIONS", {}), "server_side_binding": True}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    assert store_one_event().startswith("INSERT INTO")


def test_the_write_comes_after_the_response_is_produced(fhir, record):
    with CaptureQueriesContext(connection) as queries:
        fhir.get("/fhir/Observation/o1")
    writes = [i for i, q in enumerate(queries.captured_queries) if "INSERT" in q["sql"]]
    reads = [i for i, q in enumerate(queries.captured_queries) if "\"fhir_id\" = 'o1'" in q["sql"]]
    assert writes and reads and min(writes) > max(reads)


def test_an_error_while_storing_is_logged_and_the_response_stands(
    fhir, record, monkeypatch, caplog
):
    def fail(events):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit_log, "do_record_audit_events", fail)
    with caplog.at_level(logging.ERROR, logger="fhir_api.audit"):
        response = fhir.get("/fhir/Observation/o1")
    assert response.status_code == 200
    (logged,) = [r for r in caplog.records if r.name == "fhir_api.audit"]
    assert logged.levelno == logging.ERROR
    assert "disk full" in logged.exc_text
    assert '"reference":"Observation/o1"' in logged.getMessage()  # the event itself is kept


def test_an_error_while_building_is_logged_and_the_response_stands(
    fhir, record, monkeypatch, caplog
):
    monkeypatch.setattr(audit, "rest_event", lambda *args, **kwargs: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="fhir_api.audit"):
        assert fhir.get("/fhir/Observation/o1").status_code == 200
    (logged,) = [r for r in caplog.records if r.name == "fhir_api.audit"]
    assert "GET /fhir/Observation/o1" in logged.getMessage()


def test_outside_a_request_an_event_is_queued_at_once():
    audit_log.record(
        audit.rest_event("read", resource_type="Patient", fhir_id="p1", patients={"p1"})
    )
    (event,) = events()
    assert event["meta"]["versionId"] == "1"
    assert patients(event) == ["Patient/p1"]


def test_several_events_are_queued_in_one_write():
    samples = [audit.rest_event("read", resource_type="Patient", fhir_id=f"p{i}") for i in range(3)]
    with CaptureQueriesContext(connection) as queries:
        audit_log.do_record_audit_events(samples)
    assert len(queries.captured_queries) == 1
    assert QueuedAuditEvent.objects.count() == 3
    assert sorted(e["entity"][0]["what"]["reference"] for e in events()) == [
        "Patient/p0",
        "Patient/p1",
        "Patient/p2",
    ]
