"""The audit log: AuditEvents recorded during a request, queued in one write after it and
moved into the FHIR store in batches.

`AuditMiddleware` keeps the events a request records (`record`) and queues them once its
response has been produced: after the view and every inner middleware, so outside any
transaction the view ran (a rolled-back transaction Bundle is still audited), and in a
`finally`, so an exception does not lose them. Outside a request (management commands, tests
calling functions directly) `record` queues at once.

Queueing is one INSERT of one narrow row per event (`QueuedAuditEvent`). On PostgreSQL,
unless FHIR["AUDIT_SYNCHRONOUS_COMMIT"] is set, that INSERT commits without waiting for the
disk (`SET LOCAL synchronous_commit` in the same round trip: only this write). A failure to
queue is logged at ERROR with the events themselves and never changes the response.

`drain` moves queued events into the store, where they are searchable like any resource:
- before the FHIR API reads anything that may show AuditEvents (`drain_before_reading`), so
  a reader sees every event queued before the read;
- after a response has gone out, when this process queued events and has not drained for
  FHIR["AUDIT_DRAIN_SECONDS"] (`drain_if_due`, on `request_finished`);
- on demand with `manage.py drain_audit_events`, or every second in a process of its own with
  `--every 1` (`drain_until`), where no request waits for it.
A queued event is in the database, so no process's exit or crash loses it. Events are not
validated here: they are built by `fhir_api.audit`, whose output a test validates.
"""

import logging
import time
import uuid
from contextvars import ContextVar

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max

from . import store
from .models import QueuedAuditEvent

logger = logging.getLogger("fhir_api.audit")  # one logger for every audit failure

AUDIT_EVENT = "AuditEvent"

# The events recorded so far by the request being handled (AuditMiddleware), else None.
_pending = ContextVar("fhir_audit_pending", default=None)


class _RequestAudit:
    def __init__(self, request):
        self.request = request
        self.events = []


def record(event):
    """Queue `event` with the current request's others once its response is produced, or at
    once outside a request."""
    pending = _pending.get()
    if pending is not None:
        pending.events.append(event)
    else:
        store_events([event])


def current_request():
    """The Django request being handled (set by AuditMiddleware), else None."""
    pending = _pending.get()
    return pending.request if pending is not None else None


def client_address(request=None):
    """The address the request came from (REMOTE_ADDR: behind a proxy, the proxy's)."""
    request = request if request is not None else current_request()
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


class AuditMiddleware:
    """Collects the AuditEvents a request records and queues them in one write afterwards."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        pending = _RequestAudit(request)
        token = _pending.set(pending)
        try:
            return self.get_response(request)
        finally:
            _pending.reset(token)
            if pending.events:
                store_events(pending.events)


def store_events(events):
    """Queue AuditEvent dicts; log (at ERROR, with the events) instead of raising."""
    try:
        do_record_audit_events(events)
    except Exception:
        logger.exception(
            "Could not store %d AuditEvent(s); they follow: %s",
            len(events),
            orjson.dumps(events).decode(),
        )


def do_record_audit_events(events):
    """Queue AuditEvents with one INSERT of one narrow row each.

    Indexing an event in the store (its resource, version and a dozen index rows) cost about
    2.4 ms a request on PostgreSQL, against 0.3 ms for this row; `drain` indexes queued
    events in batches, where bulk inserts make each one cheap.
    """
    contents = [orjson.dumps(event).decode() for event in events]
    rows = ", ".join(["(%s)"] * len(contents))
    table = connection.ops.quote_name(QueuedAuditEvent._meta.db_table)
    statement = f"INSERT INTO {table} (content) VALUES {rows}"  # noqa: S608 (names from the model)
    if connection.vendor == "postgresql" and _may_skip_waiting_for_the_disk():
        # Two statements in one simple query form one implicit transaction, so LOCAL applies
        # to this INSERT's commit alone.
        statement = "SET LOCAL synchronous_commit TO off; " + statement
    with connection.cursor() as cursor:
        cursor.execute(statement, contents)
    _drain_clock.recorded = True


def _may_skip_waiting_for_the_disk():
    """Unless the operator asked for waiting; never inside a transaction (the SET would cover
    its other writes), nor with server-side binding (one statement per query only)."""
    options = connection.settings_dict.get("OPTIONS", {})
    return not (
        settings.FHIR["AUDIT_SYNCHRONOUS_COMMIT"]
        or connection.in_atomic_block
        or options.get("server_side_binding")
    )


# --- Draining the queue into the store --------------------------------------------------------

DRAIN_BATCH = 500


def drain(*, wait=True):
    """Move the AuditEvents queued so far into the FHIR store, oldest first; returns how many.

    Only events queued before the drain began: under load the queue never empties, and a
    reader must not wait for it to. Each batch is one transaction: its events are stored and
    leave the queue together, or stay queued. Concurrent drains never store an event twice
    (the queue rows are locked); with `wait` a drain waits for batches others are moving, so
    once it returns every event queued before it began is in the store. Without `wait` it
    skips them (background drains).
    """
    last = QueuedAuditEvent.objects.aggregate(last=Max("id"))["last"]
    moved = 0
    while last is not None:
        batch = _drain_batch(last, wait=wait)
        moved += batch
        # Waiting, a batch may come back short while others move rows: go on until none.
        if batch == 0 or (not wait and batch < DRAIN_BATCH):
            break
    return moved


def _drain_batch(last, *, wait):
    with transaction.atomic():
        queued = QueuedAuditEvent.objects.select_for_update(skip_locked=not wait)
        queued = queued.filter(id__lte=last).order_by("id")
        rows = list(queued.values_list("id", "content")[:DRAIN_BATCH])
        if not rows:
            return 0
        store.do_create_many([_new_event(content) for _, content in rows])
        QueuedAuditEvent.objects.filter(id__in=[pk for pk, _ in rows]).delete()
    return len(rows)


def _new_event(content):
    fhir_id = str(uuid.uuid4())
    return store.NewResource(
        AUDIT_EVENT, fhir_id, {"resourceType": AUDIT_EVENT, **orjson.loads(content)}
    )


def drain_before_reading(resource_type, params=()):
    """Drain first if a read of `resource_type` (None: every type) with these search
    parameters (`_include`, `_revinclude`...) may show AuditEvents."""
    if resource_type in (None, AUDIT_EVENT) or any(
        AUDIT_EVENT in name or AUDIT_EVENT in value for name, value in params
    ):
        drain(wait=True)


class _DrainClock:
    """When this process last drained, and whether it has queued events since."""

    def __init__(self):
        self.drained_at = time.monotonic()
        self.recorded = False

    def due(self):
        seconds = settings.FHIR["AUDIT_DRAIN_SECONDS"]
        return (
            self.recorded and seconds is not None and time.monotonic() - self.drained_at >= seconds
        )


_drain_clock = _DrainClock()


def drain_if_due(**kwargs):
    """`request_finished` receiver: once the response has gone out, drain the queue if this
    process queued events and has not drained for FHIR["AUDIT_DRAIN_SECONDS"]. Never raises:
    what fails to move stays queued for the next drain."""
    if not _drain_clock.due():
        return
    _drain_clock.drained_at, _drain_clock.recorded = time.monotonic(), False
    drain_in_background()


def drain_until(stop, every):
    """Drain every `every` seconds until the threading.Event `stop` is set: the loop of
    `manage.py drain_audit_events --every`, a process that drains so that no request waits."""
    while not stop.is_set():
        drain_in_background()
        stop.wait(every)


def drain_in_background():
    """`drain(wait=False)` that never raises: a failure is logged and its events stay queued
    for the next drain. After a database error the connection is closed, so that a process
    that drains again and again reconnects (the server may have ended it); in a request,
    Django would reconnect at the next one anyway."""
    try:
        drain(wait=False)
    except Exception as error:
        logger.exception("Could not move queued AuditEvents into the store; they stay queued")
        if isinstance(error, DatabaseError):
            connection.close()
