"""Enforcing an AccessPolicy: what a request may reach is decided in the SQL, what it may write
is checked on the content before it is stored.

- An interaction on a type no grant allows is 403 (`Forbidden`), for searches too.
- Reads and searches AND a filter into their query (`narrow_q`): the union of the grants'
  conditions, each "in this patient's compartment" and/or "matches these criteria". A
  resource outside it is absent from results, with `total` and paging right, and reading it
  is the same 404 as for a resource that does not exist (`access_resource`).
- Writes (`check_create`, `check_update`, `check_delete`) need a grant of their letter whose
  conditions the new content and, for update and delete, the current content both meet,
  evaluated on the content's index rows. A patient grant's write must leave the resource in
  that patient's compartment and no other's. A refused write is 403.
- `_include`d resources and system history are filtered across types (`any_type_q`).

A `full_access` policy (staff sessions) skips all of it. Views and bundles call these
functions; they never look at grants themselves.
"""

import dataclasses
import operator
import uuid
from functools import reduce

import orjson
from django.db.models import Q

from . import audit_log, store
from .compartments import (
    SHARED_REFERENCE_TYPES,
    can_be_in_patient_compartment,
    is_shared_reference_type,
    patient_compartment_q,
)
from .exceptions import Forbidden, InvalidResource, InvalidSearch, ResourceNotFound
from .policy import CREATE, DELETE, READ, SEARCH, UPDATE
from .search.extract import extract_index
from .search.match import matches_criteria
from .search.query import criteria_q, run_search
from .validation import check_resource_type

_VERBS = {
    CREATE: "creating",
    READ: "reading",
    UPDATE: "updating",
    DELETE: "deleting",
    SEARCH: "searching",
}
NOTHING = Q(pk__in=[])  # matches no row, and Django runs no query for it


class _Unreachable:
    """A grant's condition for a type it cannot reach at all (as opposed to None: every row)."""


UNREACHABLE = _Unreachable()


# --- Which interactions, and which rows ----------------------------------------------------


def narrow_q(policy, resource_type, interaction):
    """The Q on Resource a read or search of `resource_type` must add; None for no limit.

    403 if no grant allows `interaction` on the type.
    """
    check_resource_type(resource_type)
    if policy.full_access:
        return None
    conditions = []
    for grant in policy.grants_for(resource_type, interaction):
        condition = grant_q(grant, resource_type, interaction)
        if condition is None:
            return None
        if condition is not UNREACHABLE:
            conditions.append(condition)
    if not conditions:
        raise _forbidden(resource_type, interaction)
    return reduce(operator.or_, conditions)


def check_interaction(policy, resource_type, interaction):
    """403 unless some grant may `interaction` on `resource_type` (whatever resource it is)."""
    if interaction in (CREATE, UPDATE, DELETE):
        check_resource_type(resource_type)
        if not policy.full_access and not _write_grants(policy, resource_type, interaction):
            raise _forbidden(resource_type, interaction)
    else:
        narrow_q(policy, resource_type, interaction)


def grant_q(grant, resource_type, interaction):
    """One grant's condition on `resource_type`: a Q, None (every row) or UNREACHABLE."""
    parts = []
    if grant.patient is not None:
        if can_be_in_patient_compartment(resource_type):
            parts.append(patient_compartment_q(grant.patient, resource_type))
        elif not (is_shared_reference_type(resource_type) and interaction in (READ, SEARCH)):
            return UNREACHABLE
    if grant.criteria:
        try:
            parts.append(criteria_q(resource_type, grant.criteria))
        except InvalidSearch:
            return UNREACHABLE  # criteria this server cannot apply must not widen access
    return reduce(operator.and_, parts) if parts else None


def any_type_q(policy, interaction):
    """The Q on Resource, across types, of what `interaction` may reach; None for no limit.

    For `_include`d resources and system history. A "*" grant with criteria reaches nothing
    here: its criteria would have to hold on every type.
    """
    if policy.full_access:
        return None
    conditions = []
    for grant in policy.grants:
        if interaction not in grant.interactions:
            continue
        if grant.resource_type != "*":
            condition = grant_q(grant, grant.resource_type, interaction)
            if condition is UNREACHABLE:
                continue
            type_q = Q(resource_type=grant.resource_type)
            conditions.append(type_q if condition is None else type_q & condition)
        elif grant.criteria:
            continue
        elif grant.patient is None:
            return None
        else:
            condition = patient_compartment_q(grant.patient)
            if interaction in (READ, SEARCH):
                condition |= Q(resource_type__in=sorted(SHARED_REFERENCE_TYPES))
            conditions.append(condition)
    return reduce(operator.or_, conditions) if conditions else NOTHING


def _forbidden(resource_type, interaction):
    return Forbidden(
        f"The access token's scopes do not allow {_VERBS[interaction]} {resource_type}"
    )


# --- Reads ---------------------------------------------------------------------------------


def access_resource(policy, resource_type, fhir_id):
    """The current version if the policy may read it; otherwise 404, as for a missing one."""
    narrow = narrow_q(policy, resource_type, READ)
    audit_log.drain_before_reading(resource_type)
    return store.read(resource_type, fhir_id, narrow=narrow)


def access_version(policy, resource_type, fhir_id, version_id):
    """One version (vread) the policy may read; otherwise 404.

    The resource must be within reach now (the SQL filter) and so must that version's own
    content: a resource moved into a patient's compartment keeps older versions that belonged
    to someone else.
    """
    narrow = narrow_q(policy, resource_type, READ)
    audit_log.drain_before_reading(resource_type)
    version = store.vread(resource_type, fhir_id, version_id, narrow=narrow)
    if narrow is not None and not version_readable(policy, version):
        raise ResourceNotFound(f"{resource_type}/{fhir_id}/_history/{version_id} is not known")
    return version


def access_history(policy, resource_type=None, fhir_id=None, **page):
    """History of one resource (r), of a type (s) or of everything the policy may search (s).

    Only versions of resources the policy reaches now are listed, so `total` counts those.
    """
    interaction = READ if fhir_id else SEARCH
    if resource_type is None:
        narrow = any_type_q(policy, SEARCH)
        if narrow is NOTHING:
            raise Forbidden("The access token's scopes do not allow the history of any type")
    else:
        narrow = narrow_q(policy, resource_type, interaction)
    audit_log.drain_before_reading(resource_type)
    history = store.history(resource_type, fhir_id, narrow=narrow, **page)
    if narrow is not None:
        # Versions whose own content is out of reach are left out of the page (`total` still
        # counts them: it comes from the SQL, which sees only current content).
        visible = [
            (version, method)
            for version, method in history.versions
            if version_readable(policy, version, interaction)
        ]
        history = dataclasses.replace(history, versions=visible)
    return history


def version_readable(policy, version, interaction=READ):
    """True if a grant of `interaction` reaches this version's own content, not only the
    current version's."""
    if version.deleted or not version.content:
        return True
    resource_type = version.resource_type
    rows = extract_index(resource_type, orjson.loads(version.content))
    for grant in policy.grants_for(resource_type, interaction):
        shared = grant.patient is not None and not can_be_in_patient_compartment(resource_type)
        if grant.patient is not None and not shared and grant.patient not in rows.compartments:
            continue
        if not grant.criteria or _criteria_hold(grant, resource_type, version.fhir_id, rows):
            return True
    return False


def _criteria_hold(grant, resource_type, fhir_id, rows):
    """A criterion that cannot be checked fails closed."""
    try:
        return matches_criteria(resource_type, fhir_id, rows, grant.criteria)
    except InvalidSearch:
        return False


def access_search(policy, resource_type, items, *, lenient, base_url):
    """run_search limited to what the policy may search, and `_include`s to what it may read."""
    narrow = narrow_q(policy, resource_type, SEARCH)
    include_narrow = any_type_q(policy, READ)
    audit_log.drain_before_reading(resource_type, items)
    return run_search(
        resource_type,
        items,
        lenient=lenient,
        base_url=base_url,
        narrow=narrow,
        include_narrow=include_narrow,
    )


# --- Writes --------------------------------------------------------------------------------


def check_write(policy, resource_type, new, old, *, interaction, fhir_id=None):
    """403 unless a grant allows `interaction` on `resource_type` for both contents.

    `new`: the resource as it will be stored (None for a delete), with `fhir_id` the id it
    will have. `old`: the current StoredResource (None if there is none). Several grants are
    a union: each content needs one grant it meets, not necessarily the same one.
    """
    if policy.full_access:
        return
    check_resource_type(resource_type)
    grants = _write_grants(policy, resource_type, interaction)
    if not grants:
        raise _forbidden(resource_type, interaction)
    if new is not None:
        if not isinstance(new, dict):
            raise InvalidResource("The body must be a JSON object holding a FHIR resource")
        if fhir_id is not None:
            new = {**new, "id": fhir_id}
        if not _reaches(grants, resource_type, new):
            raise _outside(resource_type, interaction)
    if old is not None and not _reaches(grants, resource_type, orjson.loads(old.content)):
        raise _outside(resource_type, interaction)


def check_create(policy, resource_type, data):
    """Create `data` under a new id if the policy may (403 otherwise)."""
    check_interaction(policy, resource_type, CREATE)
    fhir_id = str(uuid.uuid4())
    check_write(policy, resource_type, data, None, interaction=CREATE, fhir_id=fhir_id)
    return store.do_create(resource_type, data, fhir_id=fhir_id)


def check_update(policy, resource_type, fhir_id, data, *, if_match=None):
    """store.do_update if the policy may write the new content and the current one."""
    check_write(policy, resource_type, data, None, interaction=UPDATE, fhir_id=fhir_id)
    guard = None if policy.full_access else write_guard(policy, resource_type, UPDATE)
    return store.do_update(resource_type, fhir_id, data, if_match=if_match, guard=guard)


def check_delete(policy, resource_type, fhir_id, *, if_match=None):
    """store.do_delete if the policy may delete the current content (403 otherwise)."""
    check_interaction(policy, resource_type, DELETE)
    guard = None if policy.full_access else write_guard(policy, resource_type, DELETE)
    return store.do_delete(resource_type, fhir_id, if_match=if_match, guard=guard)


def write_guard(policy, resource_type, interaction):
    """The `guard` store.do_update/do_delete call with the locked current version."""

    def guard(current):
        if current is not None:
            check_write(policy, resource_type, None, current, interaction=interaction)

    return guard


def _write_grants(policy, resource_type, interaction):
    """Grants allowing a write; a patient grant never writes outside the compartment types."""
    return [
        grant
        for grant in policy.grants_for(resource_type, interaction)
        if grant.patient is None or can_be_in_patient_compartment(resource_type)
    ]


def _reaches(grants, resource_type, content):
    rows = extract_index(resource_type, content)
    fhir_id = content.get("id")
    return any(_grant_reaches(grant, resource_type, fhir_id, rows) for grant in grants)


def _grant_reaches(grant, resource_type, fhir_id, rows):
    if grant.patient is not None and rows.compartments != {grant.patient}:
        return False
    return not grant.criteria or _criteria_hold(grant, resource_type, fhir_id, rows)


def _outside(resource_type, interaction):
    return Forbidden(
        f"The access token's scopes do not allow {_VERBS[interaction]} this {resource_type}: "
        "the resource is, or would be, outside the patient compartment or the scopes' criteria"
    )
