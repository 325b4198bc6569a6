"""AuditEvents are queued by requests and moved into the store by drains: before any FHIR read
that may show them, after responses at most every AUDIT_DRAIN_SECONDS, and on command."""

import logging
import threading
import time

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from fhir_api import audit, audit_log, store
from fhir_api.models import QueuedAuditEvent, Resource
from tests.config.test_database_health_check import end_server_side
from tests.fhir_api.test_audit import OBSERVATION, PATIENT

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(fhir):
    """Patient/p1 and Observation/o1, with nothing queued or stored of their own writes."""
    fhir.put_resource("/fhir/Patient/p1", PATIENT)
    fhir.put_resource("/fhir/Observation/o1", OBSERVATION)
    QueuedAuditEvent.objects.all().delete()


def stored_events():
    rows = Resource.objects.filter(resource_type="AuditEvent").order_by("id")
    return [orjson.loads(row.content) for row in rows]


def what(event):
    return [entity["what"].get("reference") for entity in event.get("entity", [])]


def queue_reads(*ids):
    audit_log.do_record_audit_events(
        [audit.rest_event("read", resource_type="Patient", fhir_id=fhir_id) for fhir_id in ids]
    )


def test_a_request_queues_its_event_and_a_drain_stores_it(fhir, record):
    assert fhir.get("/fhir/Observation/o1").status_code == 200
    assert QueuedAuditEvent.objects.count() == 1
    assert stored_events() == []

    assert audit_log.drain() == 1
    assert not QueuedAuditEvent.objects.exists()
    (event,) = stored_events()
    assert event["meta"]["versionId"] == "1"
    assert "Observation/o1" in what(event)
    # Searchable like any resource once stored: the index rows were written by the drain.
    found = fhir.get("/fhir/AuditEvent", {"entity": "Observation/o1"}).json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [event["id"]]


def test_reads_of_other_types_leave_the_queue_alone(fhir, record):
    """The point of the queue: a read pays for one narrow row, not for indexing an event."""
    fhir.get("/fhir/Observation/o1")
    fhir.get("/fhir/Observation", {"patient": "p1"})
    fhir.get("/fhir/Observation/o1/_history")
    assert QueuedAuditEvent.objects.count() == 3
    assert stored_events() == []


@pytest.mark.parametrize(
    "path, params",
    [
        ("/fhir/AuditEvent", {"entity": "Observation/o1"}),
        ("/fhir/AuditEvent/_history", {}),
        ("/fhir/_history", {}),
        ("/fhir/Observation", {"_id": "o1", "_revinclude": "AuditEvent:entity"}),
    ],
)
def test_reading_what_may_show_audit_events_drains_first(fhir, record, path, params):
    fhir.get("/fhir/Observation/o1")
    body = fhir.get(path, params).json()
    assert QueuedAuditEvent.objects.count() == 1  # this search's own event, queued after it
    shown = [entry["resource"] for entry in body["entry"]]
    assert any("Observation/o1" in what(r) for r in shown if r["resourceType"] == "AuditEvent")


def test_a_search_by_post_with_an_audit_revinclude_drains_first(fhir, record):
    fhir.get("/fhir/Observation/o1")
    form = "_id=o1&_revinclude=AuditEvent:entity"
    form_type = "application/x-www-form-urlencoded"
    body = fhir.post("/fhir/Observation/_search", form, content_type=form_type).json()
    assert QueuedAuditEvent.objects.count() == 1  # this search's own event, queued after it
    assert [entry["resource"]["resourceType"] for entry in body["entry"]] == [
        "Observation",
        "AuditEvent",
    ]


def test_a_drain_keeps_the_order_events_were_recorded_in():
    queue_reads(*(f"p{i}" for i in range(audit_log.DRAIN_BATCH + 3)))  # two batches
    assert audit_log.drain() == audit_log.DRAIN_BATCH + 3
    order = [what(event)[0] for event in stored_events()]
    assert order == [f"Patient/p{i}" for i in range(audit_log.DRAIN_BATCH + 3)]


def test_a_drain_under_load_stops_at_what_was_queued_when_it_began(monkeypatch):
    """Requests keep queueing while a drain runs; a reader's drain must still end."""
    queue_reads(*(f"p{i}" for i in range(audit_log.DRAIN_BATCH + 1)))
    store_them = store.do_create_many
    batches = []

    def while_requests_arrive(new_resources):
        batches.append(len(new_resources))
        assert len(batches) <= 3, f"the drain does not end: batches of {batches}"
        stored = store_them(new_resources)
        queue_reads("late")
        return stored

    monkeypatch.setattr(store, "do_create_many", while_requests_arrive)
    assert audit_log.drain() == audit_log.DRAIN_BATCH + 1
    assert QueuedAuditEvent.objects.count() == 2  # one late event per batch, left for later


def test_a_failed_drain_leaves_every_event_queued(monkeypatch):
    queue_reads("p1", "p2")

    def fail(new_resources):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "do_create_many", fail)
    with pytest.raises(RuntimeError):
        audit_log.drain()
    assert QueuedAuditEvent.objects.count() == 2
    assert stored_events() == []


def test_the_timed_drain_runs_once_the_response_is_out(fhir, record, settings):
    settings.FHIR = {**settings.FHIR, "AUDIT_DRAIN_SECONDS": 0}
    response = fhir.get("/fhir/Observation/o1")  # the test client closes it: request_finished
    assert response.status_code == 200
    assert not QueuedAuditEvent.objects.exists()
    assert "Observation/o1" in what(stored_events()[-1])


def test_the_timed_drain_waits_for_its_interval(fhir, record, settings, monkeypatch):
    settings.FHIR = {**settings.FHIR, "AUDIT_DRAIN_SECONDS": 3600}
    monkeypatch.setattr(audit_log._drain_clock, "drained_at", time.monotonic())
    fhir.get("/fhir/Observation/o1")
    assert QueuedAuditEvent.objects.count() == 1


def test_a_failing_timed_drain_is_logged_and_keeps_the_events(
    fhir, record, settings, monkeypatch, caplog
):
    settings.FHIR = {**settings.FHIR, "AUDIT_DRAIN_SECONDS": 0}
    monkeypatch.setattr(store, "do_create_many", lambda new: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="fhir_api.audit"):
        assert fhir.get("/fhir/Observation/o1").status_code == 200
    assert "stay queued" in caplog.records[-1].getMessage()
    assert QueuedAuditEvent.objects.count() == 1


def test_the_drain_command_moves_everything(capsys):
    queue_reads("p1", "p2", "p3")
    call_command("drain_audit_events")
    assert "Moved 3 queued AuditEvent(s)" in capsys.readouterr().out
    assert not QueuedAuditEvent.objects.exists()
    assert len(stored_events()) == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_concurrent_drains_store_each_event_once():
    count = 3 * audit_log.DRAIN_BATCH
    queue_reads(*(f"p{i}" for i in range(count)))
    drainers = 4
    barrier = threading.Barrier(drainers)
    moved, errors = [], []

    def drain(wait):
        try:
            barrier.wait()
            moved.append(audit_log.drain(wait=wait))
        except Exception as error:  # reported below: a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain, args=(i % 2 == 0,)) for i in range(drainers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(moved) == count
    targets = [what(event)[0] for event in stored_events()]
    assert sorted(targets) == sorted(f"Patient/p{i}" for i in range(count))
    assert not QueuedAuditEvent.objects.exists()


class StopAfterWaits(threading.Event):
    """A stop signal that arrives during the `waits`-th pause between drains."""

    def __init__(self, waits):
        super().__init__()
        self.waits = waits

    def wait(self, timeout=None):
        self.waits -= 1
        if self.waits == 0:
            self.set()
        return self.is_set()


def test_the_drain_process_needs_a_pause_between_drains():
    with pytest.raises(CommandError, match="above 0"):
        call_command("drain_audit_events", "--every", "0")


def test_the_drain_process_drains_until_stopped():
    queue_reads("p1", "p2")
    audit_log.drain_until(StopAfterWaits(1), every=0)
    assert not QueuedAuditEvent.objects.exists()
    assert len(stored_events()) == 2


def test_the_drain_process_survives_a_failed_drain(monkeypatch, caplog):
    queue_reads("p1")
    real_create_many = store.do_create_many
    failures = iter([ZeroDivisionError])

    def fail_once(new):
        failure = next(failures, None)
        if failure:
            raise failure
        return real_create_many(new)

    monkeypatch.setattr(store, "do_create_many", fail_once)
    with caplog.at_level(logging.ERROR, logger="fhir_api.audit"):
        audit_log.drain_until(StopAfterWaits(2), every=0)
    assert "stay queued" in caplog.records[0].getMessage()
    assert not QueuedAuditEvent.objects.exists()
    assert len(stored_events()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="ends a PostgreSQL backend")
def test_the_drain_process_reconnects_after_the_database_ended_its_connection(caplog):
    queue_reads("p1")
    end_server_side(connection.connection.info.backend_pid)
    with caplog.at_level(logging.ERROR, logger="fhir_api.audit"):
        audit_log.drain_until(StopAfterWaits(2), every=0)
    assert "stay queued" in caplog.records[0].getMessage()
    assert not QueuedAuditEvent.objects.exists()
    assert len(stored_events()) == 1
