"""The FHIR store: read, vread, create, update, delete and history as plain functions.

Writes validate first, then change the current row, append a version and rewrite the search
index and compartment rows in one transaction, so a failed write changes nothing. Reads
return the stored JSON text without parsing or validating it again.

Access control stays outside (access.py) but reaches in at two points: reads take a `narrow`
Q on Resource that goes into the same query (a row outside it is "not known", exactly like a
missing one), and updates and deletes take a `guard` called with the current version once its
row is locked, so the check and the write see the same version.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.db import IntegrityError, connection, transaction

from .exceptions import (
    Conflict,
    InvalidResource,
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
)
from .models import (
    CompartmentMembership,
    DateIndex,
    ReferenceIndex,
    Resource,
    ResourceVersion,
    StringIndex,
    TokenIndex,
)
from .prepared import PreparedLookup
from .search.extract import extract_index
from .validation import check_id, check_resource, check_resource_type

INDEX_MODELS = (TokenIndex, StringIndex, DateIndex, ReferenceIndex, CompartmentMembership)


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored; `content` is its JSON text ('' when deleted)."""

    resource_type: str
    fhir_id: str
    version_id: int
    last_updated: datetime
    content: str
    deleted: bool = False

    @property
    def etag(self):
        return f'W/"{self.version_id}"'

    @property
    def relative_url(self):
        return f"{self.resource_type}/{self.fhir_id}"

    @property
    def versioned_url(self):
        return f"{self.resource_type}/{self.fhir_id}/_history/{self.version_id}"

    @classmethod
    def from_row(cls, row):
        return cls(
            row.resource_type,
            row.fhir_id,
            row.version_id,
            row.last_updated,
            row.content,
            getattr(row, "deleted", row.content == ""),
        )


# --- Reads ------------------------------------------------------------------------------------


def read(resource_type, fhir_id, *, narrow=None):
    """The current version; 404 if it never existed (or is outside `narrow`), 410 if deleted."""
    check_resource_type(resource_type)
    row = _get_current(resource_type, fhir_id, narrow)
    if row.deleted:
        raise ResourceGone(f"{resource_type}/{fhir_id} was deleted")
    return StoredResource.from_row(row)


def vread(resource_type, fhir_id, version_id, *, narrow=None):
    """One version; 404 if unknown or the resource is outside `narrow`, 410 for a deletion."""
    check_resource_type(resource_type)
    versions = ResourceVersion.objects.filter(
        resource_type=resource_type, fhir_id=fhir_id, version_id=_version_number(version_id)
    )
    if narrow is not None:
        versions = versions.filter(resource__in=_current_rows(resource_type, fhir_id, narrow))
    row = versions.only(
        "resource_type", "fhir_id", "version_id", "last_updated", "method", "content"
    ).first()
    if row is None:
        raise ResourceNotFound(f"{resource_type}/{fhir_id}/_history/{version_id} is not known")
    if row.method == "DELETE":
        raise ResourceGone(f"Version {version_id} of {resource_type}/{fhir_id} is a deletion")
    return StoredResource.from_row(row)


def _get_current(resource_type, fhir_id, narrow=None):
    if narrow is None:
        row = _CURRENT.get(resource_type, fhir_id)  # every read by id: compiled once
    else:
        row = _current_rows(resource_type, fhir_id, narrow).first()
    if row is None:
        raise ResourceNotFound(f"{resource_type}/{fhir_id} is not known")
    return row


_CURRENT = PreparedLookup(Resource, "resource_type", "fhir_id")


def _current_rows(resource_type, fhir_id, narrow=None):
    rows = Resource.objects.filter(resource_type=resource_type, fhir_id=fhir_id)
    return rows.filter(narrow) if narrow is not None else rows


def _current_for_update(resource_type, fhir_id):
    """The current row locked until the transaction ends (PostgreSQL), or None."""
    rows = Resource.objects.select_for_update().filter(resource_type=resource_type, fhir_id=fhir_id)
    return rows.first()


def _version_number(version_id):
    try:
        return int(version_id)
    except (TypeError, ValueError):
        raise ResourceNotFound(f"'{version_id}' is not a version of this server") from None


# --- Writes -----------------------------------------------------------------------------------


def do_create(resource_type, data, *, fhir_id=None):
    """Store a new resource under a server-assigned id (any id in the body is ignored)."""
    check_resource_type(resource_type)
    check_resource(resource_type, data)
    fhir_id = fhir_id or str(uuid.uuid4())
    with transaction.atomic():
        return _write(None, resource_type, fhir_id, data, method="POST")


@dataclass(frozen=True)
class NewResource:
    """A resource checked by `check_new_resource`, waiting for `do_create_many`."""

    resource_type: str
    fhir_id: str
    data: dict


def check_new_resource(resource_type, data, *, fhir_id=None):
    """Validate a resource to create and fix its id; nothing is stored yet.

    Separate from `do_create_many` so a caller creating many can tell which one was invalid.
    """
    check_resource_type(resource_type)
    check_resource(resource_type, data)
    return NewResource(resource_type, fhir_id or str(uuid.uuid4()), data)


def do_create_many(new_resources):
    """Create resources under new ids with one INSERT per table for all of them.

    A transaction Bundle's POSTs and bulk imports come here: per-resource INSERTs cost more
    than validation. The ids must be new (server-assigned); a clash is a 409.
    """
    now = _now()
    pending = []
    for new in new_resources:
        data = _with_meta(new.data, new.fhir_id, 1, now)
        row = Resource(
            resource_type=new.resource_type,
            fhir_id=new.fhir_id,
            version_id=1,
            last_updated=now,
            content=orjson.dumps(data).decode(),
        )
        pending.append((row, data))
    try:
        with transaction.atomic():
            _insert_new_rows([row for row, _ in pending])
            _insert_index_rows_many(pending)
    except IntegrityError:
        raise Conflict("A resource with one of these ids already exists; retry") from None
    return [StoredResource.from_row(row) for row, _ in pending]


def do_update(resource_type, fhir_id, data, *, if_match=None, guard=None):
    """Update or create-on-update; returns (stored, created). The body id must match the URL.

    `guard`, if given, is called with the current version once its row is locked, and raises
    to refuse the update. For a deleted resource that is the last version with content (the
    update brings that resource back, history and all); None if the id is new.
    """
    check_resource_type(resource_type)
    check_id(fhir_id)
    check_resource(resource_type, data)
    if data.get("id") != fhir_id:
        raise InvalidResource(
            f"The resource id '{data.get('id')}' must equal the id in the URL, '{fhir_id}'",
            expression=[f"{resource_type}.id"],
        )
    try:
        with transaction.atomic():
            row = _current_for_update(resource_type, fhir_id)
            check_if_match(row, if_match)
            created = row is None or row.deleted
            if guard is not None:
                guard(_last_content(row))
            return _write(row, resource_type, fhir_id, data, method="PUT"), created
    except IntegrityError:
        # Two requests created the same id at once; the loser reports a conflict.
        raise Conflict(f"{resource_type}/{fhir_id} was created concurrently; retry") from None


def do_delete(resource_type, fhir_id, *, if_match=None, guard=None):
    """Delete the resource; deleting what is absent or already deleted succeeds too.

    `guard` as for do_update: called with the current version (or None) under the lock.
    """
    check_resource_type(resource_type)
    with transaction.atomic():
        row = _current_for_update(resource_type, fhir_id)
        check_if_match(row, if_match)
        absent = row is None or row.deleted
        if guard is not None:
            guard(None if absent else StoredResource.from_row(row))
        if absent:
            return None
        row.version_id += 1
        row.last_updated = _now()
        row.deleted = True
        row.content = ""
        row.save(update_fields=["version_id", "last_updated", "deleted", "content"])
        _append_version(row, "DELETE")
        _delete_index_rows(row.pk)
        return StoredResource.from_row(row)


def _last_content(row):
    """The current version of `row`, or its last one with content if deleted; None if no row."""
    if row is None:
        return None
    if not row.deleted:
        return StoredResource.from_row(row)
    version = (
        ResourceVersion.objects.filter(resource=row)
        .exclude(method="DELETE")
        .order_by("-version_id")
        .only("resource_type", "fhir_id", "version_id", "last_updated", "content")
        .first()
    )
    return StoredResource.from_row(version) if version is not None else None


def check_if_match(row, if_match):
    """412 unless If-Match (W/"n" or "n") names the current version."""
    if if_match is None:
        return
    current = None if row is None or row.deleted else row.version_id
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if current is None or wanted != str(current):
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version ({current or 'none'})"
        )


def _write(row, resource_type, fhir_id, data, *, method):
    """Save `data` as the next version of `row` (or as a new resource) with fresh index rows."""
    now = _now()
    version_id = 1 if row is None else row.version_id + 1
    data = _with_meta(data, fhir_id, version_id, now)
    content = orjson.dumps(data).decode()
    if row is None:
        row = Resource.objects.create(
            resource_type=resource_type,
            fhir_id=fhir_id,
            version_id=version_id,
            last_updated=now,
            content=content,
        )
    else:
        row.version_id, row.last_updated, row.content, row.deleted = version_id, now, content, False
        row.save(update_fields=["version_id", "last_updated", "content", "deleted"])
        _delete_index_rows(row.pk)
    _append_version(row, method)
    _insert_index_rows(row, data)
    return StoredResource.from_row(row)


def _with_meta(data, fhir_id, version_id, now):
    """The body with the server's id, meta.versionId and meta.lastUpdated; client values ignored."""
    meta = dict(data.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = format_instant(now)
    data = {"resourceType": data["resourceType"], "id": fhir_id, "meta": meta} | {
        key: value for key, value in data.items() if key not in ("resourceType", "id", "meta")
    }
    return data


def _append_version(row, method):
    _version(row, method).save(force_insert=True)


def _version(row, method):
    return ResourceVersion(
        resource=row,
        resource_type=row.resource_type,
        fhir_id=row.fhir_id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        method=method,
        content=row.content,
    )


def _insert_index_rows(row, data):
    _insert_index_rows_many([(row, data)])


def _insert_index_rows_many(pairs):
    """Index rows for (Resource row, data) pairs: one executemany INSERT per index table."""
    tokens, strings, dates, references, compartments = [], [], [], [], []
    adapt = connection.ops.adapt_datetimefield_value
    for row, data in pairs:
        rows = extract_index(row.resource_type, data)
        key = (row.pk, row.resource_type)
        tokens += ((*key, *token) for token in rows.tokens)
        strings += ((*key, *string) for string in rows.strings)
        dates += ((*key, param, adapt(low), adapt(high)) for param, low, high in rows.dates)
        references += ((*key, *reference) for reference in rows.references)
        compartments += ((*key, patient_id) for patient_id in rows.compartments)
    _insert_rows(TokenIndex, ("param", "system", "code"), tokens)
    _insert_rows(StringIndex, ("param", "value", "exact"), strings)
    _insert_rows(DateIndex, ("param", "low", "high"), dates)
    _insert_rows(ReferenceIndex, ("param", "target_type", "target_id", "url"), references)
    _insert_rows(CompartmentMembership, ("patient_id",), compartments)


def _insert_new_rows(rows):
    """INSERT new Resource rows and their first versions, setting each row's pk.

    On PostgreSQL the ids are taken from the table's sequence in one query and the rows sent
    with COPY: bulk_create's UNNEST arrays are quoted in Python, byte by byte of each
    resource's JSON, and cost more than validating the resource.
    """
    if connection.vendor != "postgresql":
        Resource.objects.bulk_create(rows)
        ResourceVersion.objects.bulk_create([_version(row, "POST") for row in rows])
        return
    for row, pk in zip(rows, _next_ids(Resource, len(rows)), strict=True):
        row.pk = pk
    common = ("resource_type", "fhir_id", "version_id", "last_updated")
    _insert(
        Resource,
        ("id", *common, "deleted", "content"),
        [(r.pk, r.resource_type, r.fhir_id, 1, r.last_updated, False, r.content) for r in rows],
    )
    _insert(
        ResourceVersion,
        ("resource", *common, "method", "content"),
        [(r.pk, r.resource_type, r.fhir_id, 1, r.last_updated, "POST", r.content) for r in rows],
    )


def _next_ids(model, count):
    """`count` new values of the model's id sequence (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _insert_rows(model, fields, values):
    """INSERT index rows: (resource, resource_type, *fields) tuples."""
    _insert(model, ("resource", "resource_type", *fields), values)


def _insert(model, fields, values):
    """INSERT tuples of `fields`' values: COPY on PostgreSQL, else one executemany.

    Not bulk_create: building a model instance per index row (a dozen per resource) cost more
    than validating the resource; without them a transaction import ran 1.7x as fast. On
    PostgreSQL, executemany still binds and sends each row on its own in Python; COPY streams
    them through psycopg's C adapters (an import of transaction Bundles ran 1.7x as fast).
    """
    if not values:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    table = f"{quote(meta.db_table)} ({columns})"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} VALUES ({placeholders})", values)  # noqa: S608
            return
        # Names come from the model; values travel in COPY's own format. Django's error
        # wrapper is applied by hand: COPY goes past its cursor wrapper (a duplicate id
        # must still raise django.db.IntegrityError).
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy,
        ):
            for row in values:
                copy.write_row(row)


def _delete_index_rows(resource_pk):
    for model in INDEX_MODELS:
        model.objects.filter(resource_id=resource_pk).delete()


# --- History ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPage:
    total: int
    versions: list  # of (StoredResource, method), newest first
    count: int = 0  # the page size and offset asked for, for the Bundle's paging links
    offset: int = 0


def history(resource_type=None, fhir_id=None, *, count, offset=0, since=None, narrow=None):
    """Versions newest first, deletes included: of one resource, of a type, or of everything.

    `narrow` (a Q on Resource) keeps the versions of the resources it matches now; an instance
    outside it is "not known".
    """
    versions = ResourceVersion.objects.all()
    if resource_type is not None:
        check_resource_type(resource_type)
        versions = versions.filter(resource_type=resource_type)
    if fhir_id is not None:
        versions = versions.filter(fhir_id=fhir_id)
        if not _current_rows(resource_type, fhir_id, narrow).exists():
            raise ResourceNotFound(f"{resource_type}/{fhir_id} is not known")
    elif narrow is not None:
        versions = versions.filter(resource__in=Resource.objects.filter(narrow).values("id"))
    if since is not None:
        versions = versions.filter(last_updated__gte=since)
    total = versions.count()
    page = versions.order_by("-last_updated", "-id")[offset : offset + count]
    rows = page.only("resource_type", "fhir_id", "version_id", "last_updated", "method", "content")
    versions = [(StoredResource.from_row(row), row.method) for row in rows]
    return HistoryPage(total, versions, count=count, offset=offset)


def _now():
    """Now, truncated to milliseconds so the stored meta.lastUpdated equals the indexed value."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_instant(moment):
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
