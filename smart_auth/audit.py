"""AuditEvents of the authorization server, stored by fhir_api's recorder (`fhir_api.audit`).

- /smart/token (issued, refreshed, refused): `type` DCM 110114 User Authentication, `subtype`
  IHE ITI-71 Get Access Token plus `urn:ietf:rfc:6749` authorization_code or refresh_token,
  action E, outcome 0 or 4 (refused).
- /smart/revoke, and all of an app's tokens when it is deactivated: 110114 with `subtype`
  `urn:ietf:rfc:7009` revoke, action D. Tokens revoked because a used code came back
  (RFC 6749 section 4.1.2) are the same under DCM 110113 Security Alert.
- Consent given, refused and withdrawn (consent page, Connected apps): DCM 110113 Security
  Alert with IHE BALP's AuthZ-Consent `subtype`, action C, E (outcome 4) and D.

Following IHE IUA ITI-71 and BALP: the app is an `agent` (client_id, network address), the
person another (username, fhirUser), this authorization server a third; the token request is a
base64 `query` entity without its secrets (code, verifier, client secret, refresh token), an
issued token is named by its `jti`, and the patient in context is a Patient entity. Claims
are read only from tokens this server signed (a presented token is verified first).
"""

import base64
from urllib.parse import urlencode

import orjson
from django.contrib.auth import get_user_model

from fhir_api import audit, audit_log
from fhir_api.audit import (  # noqa: F401 (MINOR_FAILURE: for callers)
    AUTHOR,
    DCM,
    MINOR_FAILURE,
    SUCCESS,
    SYSTEM_OBJECT,
    build_event,
    client_agent,
    client_system,
    outcome_of,
    patient_entities,
    query_entity,
    user_agent,
)

from .tokens import InvalidToken, default_token_signer

USER_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
GET_ACCESS_TOKEN = {
    "system": "urn:ihe:event-type-code",
    "code": "ITI-71",
    "display": "Get Access Token",
}
GRANT_TYPES = {
    "authorization_code": {
        "system": "urn:ietf:rfc:6749",
        "code": "authorization_code",
        "display": "Authorization code grant",
    },
    "refresh_token": {
        "system": "urn:ietf:rfc:6749",
        "code": "refresh_token",
        "display": "Refreshing an access token",
    },
    "client_credentials": {
        "system": "urn:ietf:rfc:6749",
        "code": "client_credentials",
        "display": "Client credentials grant",
    },
}
REVOCATION = {"system": "urn:ietf:rfc:7009", "code": "revoke", "display": "Token revocation"}
CONSENT_DECISION = {
    "system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType",
    "code": "AuthZ-Consent",
    "display": "Authorization Decision using Roles and Consent",
}
AUTHORIZATION_SERVER = {
    "coding": [
        {
            "system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes",
            "code": "AuthzOauthService",
            "display": "OAuth Authorization Server",
        }
    ]
}
SECURITY_SERVER = [
    {
        "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
        "code": "6",
        "display": "Security Server",
    }
]
SECURITY_RESOURCE = {
    "system": "http://terminology.hl7.org/CodeSystem/object-role",
    "code": "13",
    "display": "Security Resource",
}
CONSENT = {"system": "http://hl7.org/fhir/resource-types", "code": "Consent", "display": "Consent"}
# Token request parameters kept in the audit; every other one may be a secret.
KEPT_PARAMETERS = ("grant_type", "client_id", "redirect_uri", "scope")


# --- Building -------------------------------------------------------------------------------


def authorization_server_agent():
    from .conf import get_issuer

    issuer = get_issuer()
    return {
        "type": AUTHORIZATION_SERVER,
        "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": issuer}},
        "requestor": False,
        "network": {"address": issuer, "type": audit.URI},
    }


def oauth_event(
    event_type,
    subtypes,
    action,
    *,
    outcome=SUCCESS,
    outcome_desc=None,
    client_id=None,
    username=None,
    fhir_user=None,
    patient=None,
    address=None,
    entities=(),
    person_requested=True,
    person_address=False,
):
    """An event about an app's tokens, perhaps a person's.

    The requestor is the person when `person_requested` and one is known (the app acts for
    them, or an admin acts on the app), else the app. `address` is the app's, unless
    `person_address` (an admin's browser).
    """
    person = username or fhir_user
    person_address = person_address and person
    app_requested = not (person and person_requested)
    agents = []
    if person:
        agents.append(
            user_agent(
                username,
                fhir_user=fhir_user,
                requestor=not app_requested,
                address=address if person_address else None,
            )
        )
    app_address = None if person_address else address
    agents.append(client_agent(client_id, address=app_address, requestor=app_requested))
    agents.append(authorization_server_agent())
    return build_event(
        event_type,
        subtypes,
        action,
        agents=agents,
        entities=[*entities, *patient_entities([patient] if patient else [])],
        outcome=outcome,
        outcome_desc=outcome_desc,
        source_type=SECURITY_SERVER,
    )


def token_request_event(request, response, *, client_id=None):
    """/smart/token: a token issued, refreshed or refused (`response` None: the view failed)."""
    grant_type = request.POST.get("grant_type", "")
    subtypes = [GET_ACCESS_TOKEN]
    if grant_type in GRANT_TYPES:
        subtypes.append(GRANT_TYPES[grant_type])
    status = response.status_code if response is not None else 500
    body = _json_body(response)
    claims = _issued_claims(body.get("access_token")) if status == 200 else {}
    client_id = claims.get("client_id") or client_id
    kept = [(name, request.POST[name]) for name in KEPT_PARAMETERS if request.POST.get(name)]
    if client_id and "client_id" not in request.POST:
        kept.append(("client_id", client_id))  # authenticated with HTTP Basic
    entities = [query_entity(urlencode(kept))]
    if claims.get("jti"):
        entities.append(_token_entity(claims["jti"], body.get("scope", "")))
    return oauth_event(
        USER_AUTHENTICATION,
        subtypes,
        "E",
        outcome=outcome_of(status),
        outcome_desc=_oauth_error(body, status),
        client_id=client_id,
        username=_token_username(claims, getattr(request, "smart_token_user", None)),
        fhir_user=claims.get("fhirUser"),
        patient=body.get("patient"),
        address=audit_log.client_address(request),
        entities=entities,
    )


def revocation_event(request, response, *, client_id=None):
    """/smart/revoke (RFC 7009): an app revoked one of its tokens.

    An access token (a JWT this server signed and that is still valid) names the user, the
    patient and its `jti`; a refresh token or an unknown one names nothing but the app.
    """
    status = response.status_code if response is not None else 500
    claims = _verified_claims(request.POST.get("token", ""))
    entities = []
    if claims.get("jti"):
        entities.append(_token_entity(claims["jti"], claims.get("scope", "")))
    hint = request.POST.get("token_type_hint")
    if hint in ("access_token", "refresh_token"):
        entities.append(query_entity(urlencode([("token_type_hint", hint)])))
    return oauth_event(
        USER_AUTHENTICATION,
        [REVOCATION],
        "D",
        outcome=outcome_of(status),
        outcome_desc=_oauth_error(_json_body(response), status),
        client_id=client_id or claims.get("client_id"),
        username=_token_username(claims),
        fhir_user=claims.get("fhirUser"),
        patient=claims.get("patient"),
        address=audit_log.client_address(request),
        entities=entities,
        person_requested=False,
    )


def tokens_revoked_event(application, description, *, user=None, patient=None, alert=False):
    """Every token of an app, or of one authorization, revoked by the server or an admin.

    `user`: whose tokens (one authorization), else the person acting (an admin), if any.
    `alert`: the revocation answers a possible attack (a used code presented again).
    """
    request = audit_log.current_request()
    admin = user is None
    return oauth_event(
        SECURITY_ALERT if alert else USER_AUTHENTICATION,
        [REVOCATION],
        "D",
        client_id=application.client_id,
        username=_name_of(getattr(request, "user", None) if admin else user),
        patient=patient,
        address=audit_log.client_address(request),
        entities=[_app_entity(application.client_id, application.name, description)],
        person_requested=admin,
        person_address=admin,
    )


def consent_event(
    action,
    user,
    client_id,
    *,
    app_name="",
    scopes=(),
    patient=None,
    fhir_user=None,
    outcome=SUCCESS,
    outcome_desc=None,
    address=None,
):
    """A person's decision on an app: consent given (C), refused (E, outcome 4), withdrawn (D)."""
    description = {"C": "Access granted", "E": "Access refused", "D": "Access withdrawn"}[action]
    if scopes:
        description += ": " + " ".join(scopes)
    agents = [
        user_agent(_name_of(user), fhir_user=fhir_user, role=AUTHOR, address=address),
        client_agent(client_id),
        authorization_server_agent(),
    ]
    return build_event(
        SECURITY_ALERT,
        [CONSENT_DECISION],
        action,
        agents=agents,
        entities=[
            _app_entity(client_id, app_name, description),
            *patient_entities([patient] if patient else []),
        ],
        outcome=outcome,
        outcome_desc=outcome_desc,
        source_type=SECURITY_SERVER,
    )


def _app_entity(client_id, app_name, description):
    """The person's authorization of one app (a Consent in BALP's terms, not a stored one)."""
    what = {"identifier": {"system": client_system(), "value": client_id}}
    if app_name:
        what["display"] = app_name
    return {"what": what, "type": CONSENT, "description": description}


def _token_entity(jti, scope):
    entity = {
        "what": {"identifier": {"value": f"urn:ietf:params:oauth:jti:{jti}"}},
        "type": SYSTEM_OBJECT,
        "role": SECURITY_RESOURCE,
    }
    if scope:
        entity["detail"] = [{"type": "scope", "valueString": scope}]
    return entity


def _json_body(response):
    if response is None or not response.get("Content-Type", "").startswith("application/json"):
        return {}
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(body, status):
    if status < 400:
        return None
    error = body.get("error") or f"HTTP {status}"
    description = body.get("error_description")
    return f"{error}: {description}" if description else error


def _issued_claims(token):
    """The claims of an access token this server has just issued (so no need to verify)."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _verified_claims(token):
    """The claims of a presented token if it is a valid access token of this server."""
    if token.count(".") != 2:
        return {}
    try:
        return default_token_signer.verify_access_token(token)
    except InvalidToken:
        return {}


def _token_username(claims, known_user=None):
    """The username behind a token's `sub`, or None for a backend-services token, whose
    `sub` is its client id (no person, and no user lookup). `known_user`: the user the token
    was just issued to (note_token_user), when that is who `sub` names: no lookup either."""
    if claims.get("sub") == claims.get("client_id"):
        return None
    if known_user is not None and str(known_user.pk) == claims.get("sub"):
        return known_user.get_username()
    return _username(claims.get("sub"))


def _username(user_pk):
    """The username of the user a token's `sub` names (one indexed read)."""
    if not user_pk:
        return None
    User = get_user_model()
    try:
        return User.objects.filter(pk=user_pk).values_list(User.USERNAME_FIELD, flat=True).first()
    except (ValueError, TypeError):
        return None


def _name_of(user):
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.get_username()


# --- Recording (never raises: a failure is logged by fhir_api.audit) -----------------------


def note_token_user(user):
    """Remember on the request being handled whom the token being issued is for, so that
    its AuditEvent names them without reading the user again."""
    request = audit_log.current_request()
    if request is not None:
        request.smart_token_user = user


def record_token_request(request, response, *, client_id=None):
    _record(token_request_event, request, response, client_id=client_id)


def record_revocation(request, response, *, client_id=None):
    _record(revocation_event, request, response, client_id=client_id)


def record_tokens_revoked(application, description, **kwargs):
    _record(tokens_revoked_event, application, description, **kwargs)


def record_consent(action, user, client_id, **kwargs):
    kwargs.setdefault("address", audit_log.client_address())
    _record(consent_event, action, user, client_id, **kwargs)


def _record(build, *args, **kwargs):
    try:
        event = build(*args, **kwargs)
    except Exception:
        audit_log.logger.exception("Could not build the AuditEvent %s%s", build.__name__, args[:2])
        return
    audit_log.record(event)
