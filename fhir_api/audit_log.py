"""The audit log: AuditEvents recorded during a request, stored in one write after it.

`AuditMiddleware` keeps the events a request records (`record`) and stores them once its
response has been produced: after the view and every inner middleware, so outside any
transaction the view ran (a rolled-back transaction Bundle is still audited), and in a
`finally`, so an exception does not lose them. Outside a request (management commands, tests
calling functions directly) `record` stores at once.

On PostgreSQL the AuditEvent rows, their versions and their index rows are one INSERT
statement (data-modifying CTEs), so auditing a read adds one round trip, and unless
FHIR["AUDIT_SYNCHRONOUS_COMMIT"] is set, that statement commits without waiting for the
disk (`SET LOCAL synchronous_commit` in the same round trip: only this write); elsewhere
`store.do_create_many` writes one INSERT per table in one transaction. A failure to store is
logged at ERROR with the events themselves and never changes the response. Events are not
validated here: they are built by `fhir_api.audit`, whose output a test validates.
"""

import logging
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.db import connection

from . import store
from .models import (
    CompartmentMembership,
    DateIndex,
    ReferenceIndex,
    Resource,
    ResourceVersion,
    StringIndex,
    TokenIndex,
)
from .search.extract import extract_index

logger = logging.getLogger("fhir_api.audit")  # one logger for every audit failure

AUDIT_EVENT = "AuditEvent"

# The events recorded so far by the request being handled (AuditMiddleware), else None.
_pending = ContextVar("fhir_audit_pending", default=None)


class _RequestAudit:
    def __init__(self, request):
        self.request = request
        self.events = []


def record(event):
    """Store `event` with the current request's others once its response is produced, or at
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
    """Collects the AuditEvents a request records and stores them in one write afterwards."""

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
    """Store AuditEvent dicts; log (at ERROR, with the events) instead of raising."""
    try:
        do_record_audit_events(events)
    except Exception:
        logger.exception(
            "Could not store %d AuditEvent(s); they follow: %s",
            len(events),
            orjson.dumps(events).decode(),
        )


def do_record_audit_events(events):
    """Insert AuditEvents (resource, version and index rows) with one write."""
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as meta.lastUpdated
    meta = {"versionId": "1", "lastUpdated": store.format_instant(now)}
    new = []
    for event in events:
        fhir_id = str(uuid.uuid4())
        content = {"resourceType": AUDIT_EVENT, "id": fhir_id, "meta": meta} | event
        new.append(store.NewResource(AUDIT_EVENT, fhir_id, content))
    if connection.vendor == "postgresql":
        _insert_in_one_statement(new, now)
    else:
        store.do_create_many(new)


def _insert_in_one_statement(new, now):
    """PostgreSQL: the Resource rows, their versions and index rows in one INSERT statement.

    Data-modifying CTEs: the Resource rows' generated ids feed the other tables' INSERTs. One
    statement is atomic by itself, so no transaction and one round trip.
    """
    params, values = [], []
    index_rows = {model: [] for model in _INDEX_FIELDS}
    for item in new:
        values.append("(%s, %s, 1, %s, false, %s)")
        params += [AUDIT_EVENT, item.fhir_id, now, orjson.dumps(item.data).decode()]
        rows = extract_index(AUDIT_EVENT, item.data)
        adapt = connection.ops.adapt_datetimefield_value
        index_rows[TokenIndex] += [(item.fhir_id, *row) for row in rows.tokens]
        index_rows[StringIndex] += [(item.fhir_id, *row) for row in rows.strings]
        index_rows[DateIndex] += [
            (item.fhir_id, name, adapt(low), adapt(high)) for name, low, high in rows.dates
        ]
        index_rows[ReferenceIndex] += [(item.fhir_id, *row) for row in rows.references]
        index_rows[CompartmentMembership] += [(item.fhir_id, p) for p in rows.compartments]
    resource_columns = ("resource_type", "fhir_id", "version_id", "last_updated", "deleted")
    ctes = [
        _insert_cte(
            "r",
            Resource,
            (*resource_columns, "content"),
            f"VALUES {', '.join(values)} RETURNING id, fhir_id, content",
        ),
        _insert_cte(
            "v",
            ResourceVersion,
            ("resource", *resource_columns[:-1], "method", "content"),
            "SELECT r.id, %s, r.fhir_id, 1, %s, 'POST', r.content FROM r",
        ),
    ]
    params += [AUDIT_EVENT, now]
    for model, fields in _INDEX_FIELDS.items():
        rows = index_rows[model]
        if not rows:
            continue
        names = [f"c{i}" for i in range(len(fields))]
        row = "(" + ", ".join(["%s", *(_cast(field) for field in fields)]) + ")"
        picked = ", ".join(f"x.{name}" for name in names)
        given = f"(VALUES {', '.join([row] * len(rows))}) AS x(fhir_id, {', '.join(names)})"
        select = f"SELECT r.id, %s, {picked} FROM {given} JOIN r ON r.fhir_id = x.fhir_id"  # noqa: S608
        ctes.append(
            _insert_cte(
                f"i_{model._meta.model_name}", model, ("resource", "resource_type", *fields), select
            )
        )
        params += [AUDIT_EVENT, *(value for row in rows for value in row)]
    statement = f"WITH {', '.join(ctes)} SELECT count(*) FROM r"  # noqa: S608
    if _may_skip_waiting_for_the_disk():
        # Two statements in one simple query form one implicit transaction, so LOCAL applies
        # to this INSERT's commit alone.
        statement = "SET LOCAL synchronous_commit TO off; " + statement
    with connection.cursor() as cursor:
        # Table and column names come from the models; every value is a parameter.
        cursor.execute(statement, params)


def _may_skip_waiting_for_the_disk():
    """Unless the operator asked for waiting; never inside a transaction (the SET would cover
    its other writes), nor with server-side binding (one statement per query only)."""
    options = connection.settings_dict.get("OPTIONS", {})
    return not (
        settings.FHIR["AUDIT_SYNCHRONOUS_COMMIT"]
        or connection.in_atomic_block
        or options.get("server_side_binding")
    )


def _insert_cte(name, model, fields, rows_sql):
    """`name AS (INSERT INTO table (columns) rows_sql)`; names come from the model, values are
    parameters in `rows_sql`."""
    quote = connection.ops.quote_name
    meta = model._meta
    columns = ", ".join(quote(meta.get_field(field).column) for field in fields)
    return f"{name} AS (INSERT INTO {quote(meta.db_table)} ({columns}) {rows_sql})"


# Index table -> its columns after (resource, resource_type), as store._insert_index_rows_many.
_INDEX_FIELDS = {
    TokenIndex: ("param", "system", "code"),
    StringIndex: ("param", "value", "exact"),
    DateIndex: ("param", "low", "high"),
    ReferenceIndex: ("param", "target_type", "target_id", "url"),
    CompartmentMembership: ("patient_id",),
}


def _cast(field):
    return "%s::timestamptz" if field in ("low", "high") else "%s"
