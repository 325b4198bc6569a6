"""Bundles the server builds (history) and the ones it is sent to its base (batch, transaction).

http.html#history and http.html#transaction. Stored resources go into a Bundle as the JSON text
they were stored as (`orjson.Fragment`), so building a page or a response never parses or
validates them again; the renderer writes fragments verbatim.

A transaction is one database transaction: entries are resolved first (conditional creates,
conditional updates and deletes, server ids for every POST), every reference to an entry's
`fullUrl` is rewritten to the `Type/id` it will have, then the writes run in the spec's order
(DELETE, POST, PUT, then GET). Any failing entry raises a FhirError naming `Bundle.entry[i]`,
which rolls everything back. A batch runs each entry in its own savepoint and reports failures
in that entry's `response.outcome`.

Every entry is checked against the request's AccessPolicy as if it were sent on its own
(access.py): its interaction, conditional criteria and `ifNoneExist` narrowed to what the policy
reaches, the written content after references are rewritten, reads and searches narrowed. In a
transaction every entry's interaction is checked before anything runs, and one refused entry
(403) fails the whole Bundle.
"""

import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from django.conf import settings
from django.db import transaction

from . import access, store
from .exceptions import FhirError, InvalidResource, PreconditionFailed, operation_outcome
from .policy import CREATE, DELETE, READ, SEARCH, UPDATE
from .search.query import find_matches, render_searchset
from .validation import check_id, check_resource_type

# --- History ----------------------------------------------------------------------------------

_HISTORY_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


def history_bundle(page, request, base_url):
    """The `history` Bundle for one page of `store.history`, newest version first.

    Deletes are entries without a resource. Paging links are absolute (fhirclient rejects
    relative ones) and keep every other query parameter, `_since` included.
    """
    entries = [_history_entry(stored, method, base_url) for stored, method in page.versions]
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": page.total,
        "link": _page_links(request, base_url, page.total, page.count, page.offset),
    }
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle


def _history_entry(stored, method, base_url):
    entry = {"fullUrl": f"{base_url}/{stored.relative_url}"}
    if method != "DELETE":
        entry["resource"] = orjson.Fragment(stored.content)
    status = (
        "201 Created" if method == "PUT" and stored.version_id == 1 else _HISTORY_STATUS[method]
    )
    entry["request"] = {
        "method": method,
        "url": stored.resource_type if method == "POST" else stored.relative_url,
    }
    entry["response"] = {
        "status": status,
        "etag": stored.etag,
        "lastModified": store.format_instant(stored.last_updated),
    }
    return entry


def _page_links(request, base_url, total, count, offset):
    url = _absolute_url(request.path, base_url)
    kept = [
        (k, v)
        for k, values in request.GET.lists()
        if k not in ("_count", "_offset")
        for v in values
    ]

    def link(relation, page_offset):
        query = urlencode([*kept, ("_count", count), ("_offset", page_offset)])
        return {"relation": relation, "url": f"{url}?{query}"}

    links = [link("self", offset)]
    if count and offset + count < total:
        links.append(link("next", offset + count))
    if count and offset > 0:
        links.append(link("previous", max(0, offset - count)))
    return links


def _absolute_url(path, base_url):
    """The request path under the public base URL, which is right behind a proxy too."""
    base_path = urlsplit(base_url).path.rstrip("/")
    if path == base_path or path.startswith(base_path + "/"):
        return base_url + path[len(base_path) :]
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{path}"


# --- Batch and transaction: parsing -----------------------------------------------------------

# In the order a transaction runs them (http.html#trules: DELETE, POST, PUT or PATCH, GET).
METHODS = ("DELETE", "POST", "PUT", "GET")


@dataclass
class BundleEntry:
    """One entry of a batch or transaction: what its request asks for, once understood."""

    index: int
    method: str
    resource_type: str
    fhir_id: str | None = None  # the target; assigned or resolved for POST and conditionals
    version_id: str | None = None  # GET Type/id/_history/vid
    params: list | None = None  # search (GET) or conditional criteria (PUT, DELETE)
    full_url: str | None = None
    resource: dict | None = None
    if_match: str | None = None
    if_none_exist: list | None = None
    match: tuple | None = None  # (fhir_id, version_id, last_updated) of a conditional create

    @property
    def is_write(self):
        return self.method != "GET"

    @property
    def interaction(self):
        """The SMART interaction letter the entry needs, as if it were sent on its own."""
        if self.method == "GET":
            return SEARCH if self.params is not None else READ
        return {"POST": CREATE, "PUT": UPDATE, "DELETE": DELETE}[self.method]


def _parse_entry(index, raw, base_url):
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise InvalidResource("A Bundle entry must be a JSON object", expression=[where])
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidResource(
            "A batch or transaction entry needs a request", expression=[f"{where}.request"]
        )
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise InvalidResource(
            f"request.method '{method}' is not supported here; use one of {', '.join(METHODS)}",
            expression=[f"{where}.request.method"],
        )
    if not isinstance(url, str) or not url.strip():
        raise InvalidResource("request.url is required", expression=[f"{where}.request.url"])
    path, params = _split_url(url, base_url)
    if "://" in path:
        raise InvalidResource(
            f"request.url {url} is not on this server; use a URL relative to {base_url}",
            expression=[f"{where}.request.url"],
        )
    parts = path.split("/")
    check_resource_type(parts[0])
    entry = BundleEntry(index, method, parts[0], full_url=raw.get("fullUrl"))
    _parse_target(entry, parts, params, url)
    if method in ("POST", "PUT"):
        entry.resource = raw.get("resource")
        if not isinstance(entry.resource, dict):
            raise InvalidResource(
                f"A {method} entry needs a resource", expression=[f"{where}.resource"]
            )
    if method in ("PUT", "DELETE"):
        entry.if_match = request.get("ifMatch")
    if method == "POST" and request.get("ifNoneExist"):
        entry.if_none_exist = _split_url(request["ifNoneExist"], base_url, criteria=True)[1]
    return entry


def _parse_target(entry, parts, params, url):
    """Fill in id, version or criteria from `Type`, `Type/id`, `Type/id/_history/vid`, `Type?q`."""
    method = entry.method
    if len(parts) == 1:
        if method in ("PUT", "DELETE") and not params:
            raise InvalidResource(f"{method} {url} needs an id or search criteria")
        if method == "POST" and params:
            raise InvalidResource(f"POST {url}: a create takes no query; use ifNoneExist")
        entry.params = params
    elif len(parts) == 2 and method != "POST" and not params:
        check_id(parts[1])
        entry.fhir_id = parts[1]
    elif len(parts) == 4 and parts[2] == "_history" and method == "GET" and not params:
        check_id(parts[1])
        entry.fhir_id, entry.version_id = parts[1], parts[3]
    else:
        raise InvalidResource(f"'{method} {url}' is not an interaction a Bundle entry can hold")


def _split_url(url, base_url, *, criteria=False):
    """('Type/id', [(name, value), ...]) from a relative or absolute request URL.

    `criteria=True` reads an ifNoneExist value, which may be `a=b`, `?a=b` or `Type?a=b`.
    """
    url = url.strip()
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    url = url.lstrip("/")
    if criteria and "?" not in url:
        url = "?" + url
    path, _, query = url.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


# --- Batch and transaction: processing --------------------------------------------------------


def process_bundle(data, *, base_url, policy):
    """Run a batch or transaction Bundle as `policy` allows; return its response Bundle (a dict).

    The Bundle is changed in place (references rewritten, ids set), which saves copying
    every resource of a large import. Imports and the demo data pass `FULL_ACCESS`.
    """
    bundle_type = _check_bundle(data)
    raw_entries = data.get("entry") or []
    if bundle_type == "transaction":
        responses = _run_transaction(raw_entries, base_url, policy)
    else:
        responses = _run_batch(raw_entries, base_url, policy)
    response = {"resourceType": "Bundle", "type": f"{bundle_type}-response"}
    if responses:
        response["entry"] = responses
    return response


def _check_bundle(data):
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise InvalidResource("POST to the base expects a Bundle", expression=["resourceType"])
    bundle_type = data.get("type")
    if bundle_type not in ("batch", "transaction"):
        raise InvalidResource(
            f"POST to the base takes a batch or transaction Bundle, not '{bundle_type}'",
            expression=["Bundle.type"],
        )
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be an array", expression=["Bundle.entry"])
    limit = settings.FHIR["MAX_BUNDLE_ENTRIES"]
    if len(entries) > limit:
        raise InvalidResource(
            f"The Bundle has {len(entries)} entries; this server takes at most {limit}",
            expression=["Bundle.entry"],
        )
    return bundle_type


def _run_transaction(raw_entries, base_url, policy):
    entries = []
    for index, raw in enumerate(raw_entries):
        with _entry_errors(index):
            entry = _parse_entry(index, raw, base_url)
            access.check_interaction(policy, entry.resource_type, entry.interaction)
            entries.append(entry)
    _check_unique_full_urls(entries)
    responses = [None] * len(entries)
    with transaction.atomic():
        for entry in entries:
            with _entry_errors(entry.index):
                _resolve_target(entry, policy)
        _check_no_overlap(entries)
        resolve = _reference_resolver(entries, base_url, policy)
        for entry in entries:
            if entry.resource is not None:
                with _entry_errors(entry.index):
                    _rewrite_references(entry.resource, resolve)
        by_method = {method: [e for e in entries if e.method == method] for method in METHODS}
        for entry in by_method["DELETE"]:
            with _entry_errors(entry.index):
                responses[entry.index] = _execute(entry, base_url, policy)
        _create_all(by_method["POST"], responses, base_url, policy)
        for entry in by_method["PUT"] + by_method["GET"]:
            with _entry_errors(entry.index):
                responses[entry.index] = _execute(entry, base_url, policy)
    return responses


def _create_all(entries, responses, base_url, policy):
    """A transaction's POSTs, validated one by one and then stored with one INSERT per table."""
    new = []
    for entry in entries:
        with _entry_errors(entry.index):
            if entry.match is not None:
                responses[entry.index] = _execute(entry, base_url, policy)
            else:
                resource = store.check_new_resource(
                    entry.resource_type, entry.resource, fhir_id=entry.fhir_id
                )
                access.check_write(
                    policy,
                    entry.resource_type,
                    resource.data,
                    None,
                    interaction=CREATE,
                    fhir_id=resource.fhir_id,
                )
                new.append((entry.index, resource))
    if not new:
        return
    stored = store.do_create_many([resource for _, resource in new])
    for (index, _), created in zip(new, stored, strict=True):
        responses[index] = {"response": _write_response(created, 201, base_url)}


def _run_batch(raw_entries, base_url, policy):
    """Each entry on its own: a savepoint each inside one transaction, so one commit for all."""
    responses = []
    with transaction.atomic():
        for index, raw in enumerate(raw_entries):
            try:
                with transaction.atomic():
                    entry = _parse_entry(index, raw, base_url)
                    access.check_interaction(policy, entry.resource_type, entry.interaction)
                    _resolve_target(entry, policy)
                    responses.append(_execute(entry, base_url, policy))
            except FhirError as error:
                responses.append(_error_response(error))
    return responses


@contextmanager
def _entry_errors(index):
    """Re-raise a FhirError as the same error naming the entry, so the client can find it."""
    try:
        yield
    except FhirError as error:
        expression = [_entry_expression(index, path) for path in error.expression]
        raise type(error)(
            f"Bundle.entry[{index}]: {error.diagnostics}",
            expression=expression or [f"Bundle.entry[{index}]"],
        ) from None


def _entry_expression(index, path):
    if path.startswith("Bundle.entry["):
        return path
    first, dot, rest = path.partition(".")
    if first[:1].isupper() and dot:  # 'Observation.subject' -> the entry's resource.subject
        return f"Bundle.entry[{index}].resource.{rest}"
    return f"Bundle.entry[{index}].resource.{path}"


def _check_unique_full_urls(entries):
    seen = set()
    for entry in entries:
        if entry.full_url:
            if entry.full_url in seen:
                raise InvalidResource(
                    f"Bundle.entry[{entry.index}]: fullUrl {entry.full_url} appears twice",
                    expression=[f"Bundle.entry[{entry.index}].fullUrl"],
                )
            seen.add(entry.full_url)


def _check_no_overlap(entries):
    """http.html#trules: a transaction that writes one resource twice SHALL fail."""
    seen = set()
    for entry in entries:
        if not entry.is_write or entry.fhir_id is None:
            continue
        key = (entry.resource_type, entry.fhir_id)
        if key in seen:
            raise InvalidResource(
                f"Bundle.entry[{entry.index}]: {key[0]}/{key[1]} is changed by another entry "
                "of this transaction",
                expression=[f"Bundle.entry[{entry.index}].request"],
            )
        seen.add(key)


def _resolve_target(entry, policy):
    """Decide which resource the entry writes: a new id, a conditional match, or none.

    Conditional criteria only see what the policy may write, so they neither find nor reveal
    another patient's resources.
    """
    if entry.method == "GET":
        return
    conditional = entry.if_none_exist if entry.method == "POST" else entry.fhir_id is None
    narrow = (
        access.narrow_q(policy, entry.resource_type, entry.interaction) if conditional else None
    )
    if entry.method == "POST":
        if entry.if_none_exist:
            matches = _matches(entry.resource_type, entry.if_none_exist, "ifNoneExist", narrow)
            if matches:
                entry.match = matches[0]
                entry.fhir_id = entry.match[0]
                return
        entry.fhir_id = str(uuid.uuid4())
    elif entry.method == "PUT" and entry.fhir_id is None:
        matches = _matches(entry.resource_type, entry.params, "The conditional update", narrow)
        body_id = entry.resource.get("id")
        if matches and body_id and body_id != matches[0][0]:
            raise InvalidResource(
                f"The resource id '{body_id}' differs from the id of the resource the criteria "
                f"match ({matches[0][0]})"
            )
        entry.fhir_id = matches[0][0] if matches else body_id or str(uuid.uuid4())
        entry.resource["id"] = entry.fhir_id
    elif entry.method == "DELETE" and entry.fhir_id is None:
        matches = _matches(entry.resource_type, entry.params, "The conditional delete", narrow)
        entry.fhir_id = matches[0][0] if matches else None


def _matches(resource_type, params, what, narrow=None):
    """At most one (fhir_id, version_id, last_updated) matching `params`; 412 for several."""
    rows = find_matches(resource_type, params, narrow=narrow)
    rows = rows.values_list("fhir_id", "version_id", "last_updated")
    found = list(rows[:2])
    if len(found) > 1:
        raise PreconditionFailed(f"{what} criteria match more than one {resource_type}")
    return found


# --- References -------------------------------------------------------------------------------

_CONDITIONAL_REFERENCE = re.compile(r"[A-Z][A-Za-z]+\?")


def _reference_resolver(entries, base_url, policy):
    """A function from a reference to its rewrite (or None to keep it) for this transaction."""
    targets = {}
    for entry in entries:
        if entry.method in ("POST", "PUT") and entry.full_url:
            target = f"{entry.resource_type}/{entry.fhir_id}"
            targets[entry.full_url] = target
            # An absolute fullUrl on this server is also what relative references resolve to.
            if entry.full_url.startswith(base_url + "/"):
                targets[entry.full_url[len(base_url) + 1 :]] = target
    conditional = {}

    def resolve(reference):
        target = targets.get(reference)
        if target is not None:
            return target
        if _CONDITIONAL_REFERENCE.match(reference):
            if reference not in conditional:
                conditional[reference] = _resolve_conditional_reference(reference, policy)
            return conditional[reference]
        return None

    return resolve


def _resolve_conditional_reference(reference, policy):
    """`Patient?identifier=x|y` -> `Patient/id` of the one match (http.html#trules).

    A search, so it needs the policy's search access and only finds what that reaches.
    """
    resource_type, _, query = reference.partition("?")
    check_resource_type(resource_type)
    narrow = access.narrow_q(policy, resource_type, SEARCH)
    params = parse_qsl(query, keep_blank_values=True)
    matches = _matches(resource_type, params, reference, narrow)
    if not matches:
        raise InvalidResource(f"The conditional reference {reference} matches no resource")
    return f"{resource_type}/{matches[0][0]}"


def _rewrite_references(node, resolve):
    """Replace, anywhere in the resource, every `reference` value `resolve` knows a target for."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                target = resolve(value)
                if target is not None:
                    node[key] = target
            elif isinstance(value, dict | list):
                _rewrite_references(value, resolve)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _rewrite_references(item, resolve)


# --- Executing one entry ----------------------------------------------------------------------


def _execute(entry, base_url, policy):
    """Carry out a resolved entry as `policy` allows and return its response entry."""
    if entry.method == "GET":
        return _execute_get(entry, base_url, policy)
    if entry.method == "POST":
        if entry.match is not None:
            fhir_id, version_id, last_updated = entry.match
            stored = store.StoredResource(
                entry.resource_type, fhir_id, version_id, last_updated, ""
            )
            return {"response": _write_response(stored, 200, base_url)}
        access.check_write(
            policy,
            entry.resource_type,
            entry.resource,
            None,
            interaction=CREATE,
            fhir_id=entry.fhir_id,
        )
        stored = store.do_create(entry.resource_type, entry.resource, fhir_id=entry.fhir_id)
        return {"response": _write_response(stored, 201, base_url)}
    if entry.method == "PUT":
        stored, created = access.check_update(
            policy, entry.resource_type, entry.fhir_id, entry.resource, if_match=entry.if_match
        )
        return {"response": _write_response(stored, 201 if created else 200, base_url)}
    deleted = None
    if entry.fhir_id is not None:
        deleted = access.check_delete(
            policy, entry.resource_type, entry.fhir_id, if_match=entry.if_match
        )
    response = {"status": "204 No Content"}
    if deleted is not None:
        response["etag"] = deleted.etag
        response["lastModified"] = store.format_instant(deleted.last_updated)
    return {"response": response}


def _execute_get(entry, base_url, policy):
    if entry.params is not None:
        result = access.access_search(
            policy, entry.resource_type, entry.params, lenient=False, base_url=base_url
        )
        return {"resource": orjson.Fragment(render_searchset(result)), "response": _status(200)}
    if entry.version_id is not None:
        stored = access.access_version(policy, entry.resource_type, entry.fhir_id, entry.version_id)
    else:
        stored = access.access_resource(policy, entry.resource_type, entry.fhir_id)
    return {
        "fullUrl": f"{base_url}/{stored.relative_url}",
        "resource": orjson.Fragment(stored.content),
        "response": {
            "status": "200 OK",
            "etag": stored.etag,
            "lastModified": store.format_instant(stored.last_updated),
        },
    }


def _write_response(stored, status, base_url):
    return {
        "status": _status(status)["status"],
        "location": f"{base_url}/{stored.versioned_url}",
        "etag": stored.etag,
        "lastModified": store.format_instant(stored.last_updated),
    }


def _error_response(error):
    outcome = operation_outcome(
        error.diagnostics, code=error.issue_code, expression=error.expression
    )
    return {"response": _status(error.status_code) | {"outcome": outcome}}


def _status(code):
    return {"status": f"{code} {HTTPStatus(code).phrase}"}
