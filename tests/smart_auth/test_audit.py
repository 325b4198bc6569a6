"""The authorization server's audit trail: every token issued, refused, refreshed or revoked
and every consent given, refused or withdrawn is an R4 AuditEvent (IHE IUA ITI-71 / BALP)."""

import base64
from urllib.parse import parse_qs

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.auditevent import AuditEvent

from fhir_api import audit_log
from fhir_api.models import Resource
from smart_auth import audit
from smart_auth.grants import do_revoke_app_tokens
from tests.smart_support import (
    Launch,
    authorize,
    backend_token_request,
    claims_of,
    code_from,
    exchange,
    full_launch,
    logged_in,
    make_backend_app,
    public_jwk,
    refresh,
    sign_assertion,
    signing_key,
    start,
    token_request,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def events(type_code=None):
    audit_log.drain()
    rows = Resource.objects.filter(resource_type="AuditEvent").order_by("id")
    found = [orjson.loads(row.content) for row in rows]
    return [e for e in found if type_code is None or e["type"]["code"] == type_code]


def token_events():
    return events("110114")


def consent_events():
    return [e for e in events("110113") if e["subtype"][0]["code"] == "AuthZ-Consent"]


def subtypes(event):
    return [coding["code"] for coding in event["subtype"]]


def agent_named(event, name):
    (agent,) = [agent for agent in event["agent"] if agent.get("name") == name]
    return agent


def patients(event):
    return [
        e["what"]["reference"]
        for e in event.get("entity", [])
        if e.get("role", {}).get("code") == "1"
    ]


def request_of(event):
    (query,) = [e["query"] for e in event["entity"] if "query" in e]
    return parse_qs(base64.b64decode(query).decode())


# --- Tokens ---------------------------------------------------------------------------------


def test_an_issued_token_is_audited_with_user_app_patient_and_jti(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    (event,) = token_events()
    assert subtypes(event) == ["ITI-71", "authorization_code"]
    assert (event["action"], event["outcome"]) == ("E", "0")
    person = agent_named(event, "ada")
    assert person["who"]["reference"] == "Patient/pat-1" and person["requestor"] is True
    app = agent_named(event, public_app.client_id)
    assert app["type"]["coding"][0]["code"] == "110150"
    assert app["network"]["address"] == "127.0.0.1"
    assert patients(event) == ["Patient/pat-1"]
    jti = claims_of(token["access_token"])["jti"]
    (issued,) = [e for e in event["entity"] if e.get("role", {}).get("code") == "13"]
    assert issued["what"]["identifier"]["value"] == f"urn:ietf:params:oauth:jti:{jti}"
    assert issued["detail"][0]["valueString"] == token["scope"]
    assert event["source"]["type"][0]["code"] == "6"  # a security server


def test_the_recorded_token_request_keeps_no_secret(patient_user, confidential_app):
    app, secret = confidential_app
    full_launch(patient_user, app, SCOPES, secret=secret)
    (event,) = token_events()
    recorded = request_of(event)
    assert recorded["grant_type"] == ["authorization_code"]
    assert recorded["client_id"] == [app.client_id]  # authenticated with HTTP Basic
    assert not {"code", "code_verifier", "client_secret", "refresh_token"} & set(recorded)
    assert secret not in orjson.dumps(event).decode()


def test_a_refresh_is_audited(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200
    event = token_events()[-1]
    assert subtypes(event) == ["ITI-71", "refresh_token"]
    assert event["outcome"] == "0"
    assert agent_named(event, "ada")
    assert token["refresh_token"] not in orjson.dumps(event).decode()


def test_a_refused_token_request_is_audited_as_a_failure(patient_user, public_app):
    launch = Launch.new(public_app, SCOPES)
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    response = exchange(Client(), launch, code, code_verifier="x" * 50)
    assert response.status_code == 400
    event = token_events()[-1]
    assert subtypes(event) == ["ITI-71", "authorization_code"]
    assert event["outcome"] == "4"
    assert event["outcomeDesc"].startswith("invalid_grant")
    app = agent_named(event, public_app.client_id)
    assert app["requestor"] is True  # no user is known
    assert code not in orjson.dumps(event).decode()


def test_a_backend_service_token_is_audited_with_the_app_as_requestor():
    key = signing_key("ES384")
    app = make_backend_app(jwks={"keys": [public_jwk(key, "k1", alg="ES384")]})
    assertion = sign_assertion(app.client_id, key, "k1", "ES384")
    response = backend_token_request(Client(), assertion, scope="system/*.rs")
    assert response.status_code == 200, response.content
    (event,) = token_events()
    assert subtypes(event) == ["ITI-71", "client_credentials"]
    assert event["outcome"] == "0"
    # No person: the app alone requested it, and the assertion is no part of the record.
    people = [agent for agent in event["agent"] if agent.get("name") != app.client_id]
    assert all(agent.get("requestor") is not True for agent in people)
    assert agent_named(event, app.client_id)["requestor"] is True
    assert assertion not in orjson.dumps(event).decode()


def test_an_unsupported_grant_type_is_audited_as_refused(public_app):
    response = token_request(Client(), public_app, {"grant_type": "password"})
    assert response.status_code == 400
    (event,) = token_events()
    assert subtypes(event) == ["ITI-71"]
    assert event["outcome"] == "4"
    assert event["outcomeDesc"].startswith("unsupported_grant_type")


def test_the_token_endpoint_still_needs_no_csrf_token(public_app):
    """The audit hook keeps DOT's csrf_exempt: apps post here without cookies."""
    response = token_request(
        Client(enforce_csrf_checks=True),
        public_app,
        {"grant_type": "authorization_code", "code": "nope"},
    )
    assert response.status_code == 400


def test_a_revoked_token_is_audited_with_whose_it_was(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    data = {"token": token["access_token"], "client_id": public_app.client_id}
    assert Client(enforce_csrf_checks=True).post("/smart/revoke", data).status_code == 200
    event = token_events()[-1]
    assert subtypes(event) == ["revoke"]
    assert (event["action"], event["outcome"]) == ("D", "0")
    assert agent_named(event, "ada")["who"]["reference"] == "Patient/pat-1"
    assert agent_named(event, public_app.client_id)["requestor"] is True
    assert patients(event) == ["Patient/pat-1"]
    assert token["access_token"] not in orjson.dumps(event).decode()


def test_revoking_an_unknown_token_names_only_the_app(public_app):
    data = {"token": "not-a-token", "client_id": public_app.client_id}
    assert Client().post("/smart/revoke", data).status_code == 200
    (event,) = token_events()
    assert [agent.get("name") for agent in event["agent"]] == [public_app.client_id, None]


def test_a_replayed_code_raises_a_security_alert_naming_whose_tokens_were_revoked(
    patient_user, public_app
):
    launch = Launch.new(public_app, SCOPES)
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    assert exchange(Client(), launch, code).status_code == 200
    assert exchange(Client(), launch, code).status_code == 400
    (alert,) = [e for e in events("110113") if subtypes(e) == ["revoke"]]
    assert alert["action"] == "D"
    (app,) = [e for e in alert["entity"] if e["type"]["code"] == "Consent"]
    assert "presented again" in app["description"]
    assert agent_named(alert, "ada")["requestor"] is False  # whose tokens they were
    assert agent_named(alert, public_app.client_id)["requestor"] is True
    assert patients(alert) == ["Patient/pat-1"]
    assert token_events()[-1]["outcome"] == "4"  # and the replay itself was refused


def test_deactivating_an_app_audits_every_token_revoked(public_app, admin_user):
    do_revoke_app_tokens(public_app)
    (event,) = token_events()
    assert subtypes(event) == ["revoke"] and event["action"] == "D"
    assert agent_named(event, public_app.client_id)


def test_revoking_several_apps_in_one_request_is_one_write(
    admin_user, public_app, confidential_app
):
    other, _secret = confidential_app
    browser = logged_in(admin_user)
    form = {"action": "revoke_tokens", "_selected_action": [public_app.pk, other.pk]}
    with CaptureQueriesContext(connection) as queries:
        response = browser.post("/admin/smart_auth/smartapp/", form)
    assert response.status_code == 302
    revoked = token_events()
    assert {agent["name"] for event in revoked for agent in event["agent"] if "name" in agent} == {
        "admin",
        public_app.client_id,
        other.client_id,
    }
    admin = agent_named(revoked[0], "admin")
    assert admin["requestor"] is True and admin["network"]["address"] == "127.0.0.1"
    queued = [q["sql"] for q in queries.captured_queries if "fhir_api_queuedauditevent" in q["sql"]]
    assert len(queued) == 1  # both events in one INSERT


# --- Consent ----------------------------------------------------------------------------------


def test_consent_given_is_audited_with_the_scopes_and_patient(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    (event,) = consent_events()
    assert (event["action"], event["outcome"]) == ("C", "0")
    person = agent_named(event, "ada")
    assert person["who"]["reference"] == "Patient/pat-1"
    assert person["network"]["address"] == "127.0.0.1"
    (app,) = [e for e in event["entity"] if e["type"]["code"] == "Consent"]
    assert app["what"]["identifier"]["value"] == public_app.client_id
    assert app["what"]["display"] == "Public app"
    assert app["description"] == "Access granted: " + token["scope"]
    assert patients(event) == ["Patient/pat-1"]


def test_consent_refused_is_audited_as_a_failure(patient_user, public_app):
    browser = logged_in(patient_user)
    launch = Launch.new(public_app, SCOPES)
    consent_page = start(browser, launch)["Location"]
    browser.get(consent_page)
    response = browser.post(consent_page, {"scope": SCOPES.split(), "deny": "1"})
    assert "error=access_denied" in response["Location"]
    (event,) = consent_events()
    assert (event["action"], event["outcome"]) == ("E", "4")
    assert event["outcomeDesc"] == "The user denied access"
    assert agent_named(event, "ada")


def test_consent_withdrawn_on_connected_apps_is_audited(patient_user, public_app):
    full_launch(patient_user, public_app, SCOPES)
    browser = logged_in(patient_user)
    browser.post("/smart/manage", {"client_id": public_app.client_id})
    withdrawn = consent_events()[-1]
    assert (withdrawn["action"], withdrawn["outcome"]) == ("D", "0")
    assert agent_named(withdrawn, "ada")
    (app,) = [e for e in withdrawn["entity"] if e["type"]["code"] == "Consent"]
    assert app["what"]["identifier"]["value"] == public_app.client_id


def test_each_kind_of_event_is_valid_r4(patient_user, public_app, confidential_app):
    """A sample of each kind, as stored, validates as an R4(B) AuditEvent."""
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    refresh(Client(), app, token["refresh_token"], secret=secret)
    token_request(Client(), public_app, {"grant_type": "password"})
    Client().post("/smart/revoke", {"token": "x", "client_id": public_app.client_id})
    logged_in(patient_user).post("/smart/manage", {"client_id": app.client_id})
    do_revoke_app_tokens(public_app)
    kinds = set()
    for event in events():
        AuditEvent.model_validate(event)
        kinds.add((event["type"]["code"], event["action"], event["outcome"]))
    assert kinds >= {("110114", "E", "0"), ("110114", "E", "4"), ("110114", "D", "0")}
    assert kinds >= {("110113", "C", "0"), ("110113", "D", "0")}
    AuditEvent.model_validate(
        audit.consent_event("E", patient_user, "app", outcome="4", outcome_desc="no")
    )
