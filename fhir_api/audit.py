"""The audit trail: every access to the FHIR API leaves an R4 AuditEvent in the FHIR store.

Events follow the IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/):
a RESTful interaction is `type` rest with the `restful-interaction` code as `subtype`; the
user (`who`: their fhirUser reference and username), the client app (its client_id and the
network address the request came from) and this server are `agent`s; the resource read or
written, the base64 query of a search and every patient concerned (role 1, "Patient") are
`entity`s, so `AuditEvent?patient=X` finds every access to X's record.

Building an event is plain dict assembly: the structure is known to be valid R4 (a test
validates a sample of each kind), so no model validation runs on the request path.

FhirView.finalize_response calls `audit_fhir_request` once the response is decided, errors
included; `audit_log` stores the request's events in one write after the response is produced.

AuditEvents are stored by the server only: the FHIR API refuses to create, update or delete
them for everyone, staff included (`AuditTrailIsReadOnly`).
"""

import base64
import logging
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import store
from .audit_log import AUDIT_EVENT, client_address, record
from .compartments import can_be_in_patient_compartment, get_patient_ids
from .models import ResourceVersion
from .policy import AccessPolicy
from .search.reference import FHIR_ID, RESOURCE_TYPE, server_base_urls

logger = logging.getLogger(__name__)

# --- Codes (R4 terminology, DICOM, IHE BALP) ------------------------------------------------

DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "Restful Operation",
}
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
SOURCE_ROLE = {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]}
DESTINATION_ROLE = {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]}
APPLICATION = {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]}
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RECIPIENT = {
    "coding": [{"system": _PARTICIPATION, "code": "IRCP", "display": "information recipient"}]
}
AUTHOR = {"coding": [{"system": _PARTICIPATION, "code": "AUT", "display": "author"}]}
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
PERSON = {"system": _ENTITY_TYPE, "code": "1", "display": "Person"}
SYSTEM_OBJECT = {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"}
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PATIENT_ROLE = {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"}
DOMAIN_RESOURCE = {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
QUERY_ROLE = {"system": _OBJECT_ROLE, "code": "24", "display": "Query"}
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
APPLICATION_SERVER = [{"system": _SOURCE_TYPE, "code": "4", "display": "Application Server"}]
IP_ADDRESS, URI = "2", "5"  # http://hl7.org/fhir/network-type

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = "0", "4", "8"  # audit-event-outcome

# R4 restful-interaction -> AuditEvent.action (C, R, U, D, E)
ACTIONS = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "transaction": "E",
    "batch": "E",
}
# Where data flows to the client, the client is the destination (BALP Read); otherwise the
# client is the source (BALP Query, Create, Update, Delete).
_CLIENT_RECEIVES = {"read", "vread", "history-instance", "history-type", "history-system"}
MAX_OUTCOME_DESC = 1000
MAX_QUERY = 8192


def outcome_of(status_code):
    """audit-event-outcome for an HTTP status: 0 success, 4 refused, 8 failed on our side."""
    if status_code < 400:
        return SUCCESS
    return MINOR_FAILURE if status_code < 500 else SERIOUS_FAILURE


def now_instant():
    return store.format_instant(datetime.now(UTC))


# --- Building events --------------------------------------------------------------------------


def user_system():
    """Identifier system of this server's user names."""
    return f"{settings.PUBLIC_BASE_URL}/users"


def client_system():
    """Identifier system of this server's OAuth client ids."""
    return f"{settings.PUBLIC_BASE_URL}/clients"


def user_agent(username, *, fhir_user=None, role=RECIPIENT, requestor=True, address=None):
    """The person: their FHIR resource (fhirUser) if linked, and their username."""
    who = {}
    if fhir_user:
        who["reference"] = fhir_user
    if username:
        who["identifier"] = {"system": user_system(), "value": username}
    agent = {"type": role, "who": who, "requestor": requestor}
    if username:
        agent["name"] = username  # searchable: AuditEvent?agent-name=
    if address:
        agent["network"] = {"address": address, "type": IP_ADDRESS}
    return agent


def client_agent(client_id, *, address=None, role=APPLICATION, requestor=False):
    """The software that made the request: an OAuth client, or a browser session."""
    if client_id:
        who = {"identifier": {"system": client_system(), "value": client_id}}
    else:
        who = {"display": "browser session"}
    agent = {"type": role, "who": who, "requestor": requestor}
    if client_id:
        agent["name"] = client_id  # searchable: AuditEvent?agent-name=
    if address:
        agent["network"] = {"address": address, "type": IP_ADDRESS}
    return agent


def server_agent(role):
    base_url = settings.FHIR["BASE_URL"]
    return {
        "type": role,
        "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": base_url}},
        "requestor": False,
        "network": {"address": base_url, "type": URI},
    }


def source(source_type=APPLICATION_SERVER):
    """This server, the observer of every event."""
    base_url = settings.FHIR["BASE_URL"]
    return {
        "observer": {"identifier": {"system": "urn:ietf:rfc:3986", "value": base_url}},
        "type": source_type,
    }


def resource_entity(reference, *, description=None):
    entity = {"what": reference, "type": SYSTEM_OBJECT, "role": DOMAIN_RESOURCE}
    if description:
        entity["description"] = description
    return entity


def query_entity(raw_query):
    """A search as BALP records it: the raw request in base64, so nothing in it is lost (up
    to MAX_QUERY characters: a huge form must not bloat the trail)."""
    encoded = base64.b64encode(raw_query[:MAX_QUERY].encode()).decode()
    return {"type": SYSTEM_OBJECT, "role": QUERY_ROLE, "query": encoded}


def patient_entities(patient_ids):
    """One entity per patient concerned, role 1, so the event is in their compartment."""
    return [
        {"what": {"reference": f"Patient/{patient_id}"}, "type": PERSON, "role": PATIENT_ROLE}
        for patient_id in sorted(patient_ids)
    ]


def build_event(
    event_type,
    subtypes,
    action,
    *,
    agents,
    entities=(),
    outcome=SUCCESS,
    outcome_desc=None,
    recorded=None,
    source_type=APPLICATION_SERVER,
):
    """An AuditEvent dict (no id or meta: the recorder sets them)."""
    event = {
        "resourceType": AUDIT_EVENT,
        "type": event_type,
        "subtype": list(subtypes),
        "action": action,
        "recorded": recorded or now_instant(),
        "outcome": outcome,
    }
    if outcome_desc and outcome != SUCCESS:
        event["outcomeDesc"] = str(outcome_desc)[:MAX_OUTCOME_DESC]
    event["agent"] = list(agents)
    event["source"] = source(source_type)
    if entities:
        event["entity"] = list(entities)
    return event


def rest_event(
    interaction,
    *,
    resource_type=None,
    fhir_id=None,
    patients=(),
    outcome=SUCCESS,
    outcome_desc=None,
    username=None,
    fhir_user=None,
    client_id=None,
    address=None,
    query=None,
    entities=(),
):
    """The AuditEvent of one RESTful interaction (BALP Read, Query, Create, Update, Delete).

    `interaction` is an R4 restful-interaction code. `resource_type`/`fhir_id` name what was
    read or written (the type alone when the id is unknown), `query` is the raw search request,
    `patients` the ids of every Patient whose record the interaction touched.
    """
    action = ACTIONS.get(interaction, "E")
    receives = interaction in _CLIENT_RECEIVES
    agents = []
    if username or fhir_user:
        role = AUTHOR if action in ("C", "U", "D") else RECIPIENT
        agents.append(user_agent(username, fhir_user=fhir_user, role=role))
    client_role = DESTINATION_ROLE if receives else SOURCE_ROLE
    requestor = not agents
    agents.append(client_agent(client_id, address=address, role=client_role, requestor=requestor))
    agents.append(server_agent(SOURCE_ROLE if receives else DESTINATION_ROLE))
    found = list(entities)
    if resource_type and fhir_id:
        found.insert(0, resource_entity({"reference": f"{resource_type}/{fhir_id}"}))
    elif resource_type and query is None:
        found.insert(0, resource_entity({"type": resource_type}))
    if query is not None:
        found.append(query_entity(query))
    found += patient_entities(patients)
    subtype = {"system": RESTFUL_INTERACTION, "code": interaction, "display": interaction}
    return build_event(
        REST,
        [subtype],
        action,
        agents=agents,
        entities=found,
        outcome=outcome,
        outcome_desc=outcome_desc,
    )


# --- FHIR API requests ------------------------------------------------------------------------

BUNDLE = "bundle"  # transaction or batch, told by the Bundle's type
# URL name (fhir_api.urls, config.urls) -> HTTP method -> restful-interaction. Routes not
# listed here (/fhir/metadata, unknown URLs) are not audited.
_ROUTES = {
    "type": {"GET": "search-type", "POST": "create"},
    "search": {"POST": "search-type"},
    "type-history": {"GET": "history-type"},
    "instance": {"GET": "read", "PUT": "update", "DELETE": "delete"},
    "instance-history": {"GET": "history-instance"},
    "vread": {"GET": "vread"},
    "system": {"POST": BUNDLE},
    "fhir-base": {"POST": BUNDLE},
    "system-history": {"GET": "history-system"},
}
# A method a route does not take (answered 405) is audited as what it attempted.
_BY_METHOD = {
    "GET": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def audit_fhir_request(request, response):
    """Record the AuditEvent of one FHIR API request (FhirView.finalize_response); never raises."""
    try:
        event = fhir_request_event(request, response)
    except Exception:
        logger.exception(
            "Could not build the AuditEvent of %s %s (status %s)",
            request.method,
            request.get_full_path(),
            response.status_code,
        )
        return
    if event is not None:
        record(event)


def fhir_request_event(request, response):
    """The AuditEvent of a FHIR API request and its response (a DRF Request and Response).

    Which patients it concerns comes from what is in hand: the content read or written (a
    delete reads the deleted version once), a search's `patient`/`subject` parameters, and the
    token's patient context for searches and history.
    """
    match = request.resolver_match
    if match is None or not (match.app_name == "fhir" or match.url_name == "fhir-base"):
        return None
    routes = _ROUTES.get(match.url_name)
    if routes is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    interaction = routes.get(method) or _BY_METHOD.get(method, "operation")
    resource_type = match.kwargs.get("resource_type")
    fhir_id = match.kwargs.get("fhir_id")
    status = response.status_code
    user, policy = _credential(request)
    body = _parsed_body(request) if status != 401 and method in ("POST", "PUT") else None
    context_patient = policy.patient if policy is not None else None
    patients, query, entities = set(), None, ()

    if interaction == BUNDLE:
        bundle_type = body.get("type") if isinstance(body, dict) else None
        interaction = "transaction" if bundle_type == "transaction" else "batch"
        entities, patients = _bundle_entities(body, response.data, status)
        patients |= {context_patient} if context_patient else set()
    elif interaction in ("search-type", "history-type", "history-system"):
        query = _raw_query(request, body if interaction == "search-type" else None)
        if interaction == "search-type":
            patients = _searched_patients(resource_type, _search_pairs(request, body))
        patients |= {context_patient} if context_patient else set()
    elif interaction == "history-instance":
        patients = {fhir_id} if resource_type == "Patient" else set()
        patients |= {context_patient} if context_patient else set()
    elif interaction == "create" and status == 201:
        fhir_id = _id_in_location(response.get("Location"))
        patients = _patients_of(resource_type, body, fhir_id)
    elif interaction in ("create", "update", "patch"):
        patients = _patients_of(resource_type, body, fhir_id)
    elif interaction in ("read", "vread") and status == 200:
        patients = _patients_of(resource_type, _json(response.data), fhir_id)
    elif interaction == "delete" and status < 300:
        patients = _deleted_patients(resource_type, fhir_id)
    elif resource_type == "Patient" and fhir_id:
        patients = {fhir_id}  # a refused read or history of a Patient still concerns them

    return rest_event(
        interaction,
        resource_type=resource_type,
        fhir_id=fhir_id,
        patients=patients,
        outcome=outcome_of(status),
        outcome_desc=_diagnostics(response),
        username=user.get_username() if user is not None and user.is_authenticated else None,
        fhir_user=policy.fhir_user if policy is not None else None,
        client_id=policy.client_id if policy is not None else None,
        address=client_address(request),
        query=query,
        entities=entities,
    )


def _credential(request):
    """(user or None, AccessPolicy or None) of the request, without failing on a bad one."""
    try:
        user, auth = request.user, request.auth
    except APIException:
        return None, None
    return user, auth if isinstance(auth, AccessPolicy) else None


def _parsed_body(request):
    """The request body as DRF parsed it; None if it cannot be parsed."""
    try:
        return request.data
    except APIException:
        return None


def _json(data):
    """A stored resource's JSON text (RawJson) as a dict; None if it is something else."""
    if isinstance(data, str) and data.startswith("{"):
        return orjson.loads(str(data))  # orjson takes exact str only, not the RawJson subclass
    return None


def _patients_of(resource_type, content, fhir_id=None):
    """The Patient compartments `content` is in (a Patient: its own id)."""
    patients = {fhir_id} if resource_type == "Patient" and fhir_id else set()
    if isinstance(content, dict) and can_be_in_patient_compartment(resource_type):
        patients |= get_patient_ids(resource_type, content, server_base_urls())
    return patients


def _deleted_patients(resource_type, fhir_id):
    """The patients of the last content of a deleted resource (one indexed read)."""
    if resource_type == "Patient":
        return {fhir_id}
    if not can_be_in_patient_compartment(resource_type):
        return set()
    content = (
        ResourceVersion.objects.filter(
            resource__resource_type=resource_type, resource__fhir_id=fhir_id
        )
        .exclude(method="DELETE")
        .order_by("-version_id")
        .values_list("content", flat=True)
        .first()
    )
    return _patients_of(resource_type, _json(content))


def _id_in_location(location):
    """The id in a write's Location, {base}/{type}/{id}/_history/{vid}."""
    parts = (location or "").rsplit("/", 3)
    return parts[1] if len(parts) == 4 and parts[2] == "_history" else None


def _search_pairs(request, body):
    pairs = list(_search_pairs_of(request.query_params))
    if hasattr(body, "lists"):  # POST _search: form parameters join the URL's
        pairs += _search_pairs_of(body)
    return pairs


def _search_pairs_of(query_dict):
    return [(key, value) for key, values in query_dict.lists() for value in values]


def _raw_query(request, body):
    """The search as requested: path and query string, plus a POSTed form's parameters."""
    raw = request.get_full_path()
    form = urlencode(list(_search_pairs_of(body))) if hasattr(body, "lists") else ""
    if form:
        raw += ("&" if "?" in raw else "?") + form
    return raw


def _searched_patients(resource_type, pairs):
    """Patients a search names: `patient`, `subject` (Patient/...), a Patient search's `_id`."""
    patients = set()
    for name, value in pairs:
        base, _, modifier = name.partition(":")
        if modifier not in ("", "Patient"):
            continue  # :missing, :not, :identifier... name no patient
        if base == "_id" and resource_type == "Patient":
            bare = True
        elif base in ("patient", "subject"):
            bare = base == "patient" or modifier == "Patient"
        else:
            continue
        for item in value.split(","):
            patient_id = _patient_id_in(item.strip(), bare=bare)
            if patient_id:
                patients.add(patient_id)
    return patients


def _patient_id_in(value, *, bare):
    if "Patient/" in value:
        value = value.rsplit("Patient/", 1)[1].split("/", 1)[0]
    elif not bare:
        return None
    return value if FHIR_ID.fullmatch(value) else None


def _diagnostics(response):
    """The OperationOutcome's diagnostics of an error response, for outcomeDesc."""
    data = response.data if response.status_code >= 400 else None
    if not isinstance(data, dict):
        return None
    issues = data.get("issue") or [{}]
    return "; ".join(str(issue.get("diagnostics", "")) for issue in issues if issue) or None


def _bundle_entities(bundle, response_data, status):
    """One entity per entry of a batch or transaction, and the patients its entries touch.

    The entry's outcome is its `description` ("POST 201 Created"); a transaction that failed
    as a whole has none. References were rewritten in place by the transaction, so a new
    resource's patient references hold the ids they were stored with.
    """
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return [], set()
    results = []
    if status < 300 and isinstance(response_data, dict):
        results = response_data.get("entry") or []
    base_url = settings.FHIR["BASE_URL"].rstrip("/") + "/"
    entities, patients = [], set()
    for index, raw in enumerate(entries):
        request = raw.get("request") if isinstance(raw, dict) else None
        if not isinstance(request, dict):
            continue
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            continue
        result = results[index] if index < len(results) else None
        outcome = (result.get("response") if isinstance(result, dict) else None) or {}
        path, _, search = url.strip().removeprefix(base_url).lstrip("/").partition("?")
        parts = path.split("/")
        resource_type = parts[0] if RESOURCE_TYPE.fullmatch(parts[0]) else None
        fhir_id = parts[1] if len(parts) > 1 and FHIR_ID.fullmatch(parts[1]) else None
        if outcome.get("location"):
            fhir_id = _id_in_location(outcome["location"])
        description = f"{method[:8]} {outcome.get('status', '')}".strip()
        if method == "GET" and search:
            entity = query_entity(url)
            entity["description"] = description
        elif resource_type and fhir_id:
            what = {"reference": f"{resource_type}/{fhir_id}"}
            entity = resource_entity(what, description=description)
        elif resource_type:
            entity = resource_entity({"type": resource_type}, description=description)
        else:  # not a URL this server takes: the entry is still counted
            entity = {"type": SYSTEM_OBJECT, "role": DOMAIN_RESOURCE, "description": description}
        entities.append(entity)
        resource = raw.get("resource") if method in ("POST", "PUT") else None
        patients |= _patients_of(resource_type, resource, fhir_id)
    return entities, patients


class AuditTrailIsReadOnly(BasePermission):
    """No one creates, updates or deletes AuditEvents through the API, staff included.

    The trail is written by the server alone. A Bundle with any entry that would write an
    AuditEvent is refused whole, batch or transaction.
    """

    message = (
        "AuditEvents are written by the server only; they cannot be created, changed or deleted"
    )

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        match = request.resolver_match
        name = match.url_name if match is not None else None
        if name in ("type", "instance"):
            return match.kwargs.get("resource_type") != AUDIT_EVENT
        if name in ("system", "fhir-base"):
            return not _writes_audit_events(_parsed_body(request))
        return True


def _writes_audit_events(bundle):
    """True if an entry of `bundle` would create, update or delete an AuditEvent.

    Errs towards refusing: the type is any segment of the entry's URL path, or its resource's.
    """
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return False
    for raw in entries:
        if not isinstance(raw, dict):
            continue
        request = raw.get("request")
        if not isinstance(request, dict) or request.get("method") == "GET":
            continue
        url = request.get("url")
        if isinstance(url, str) and AUDIT_EVENT in url.partition("?")[0].split("/"):
            return True
        resource = raw.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == AUDIT_EVENT:
            return True
    return False
