"""EHR launch, end to end: the EHR opens the app's launch URI with `iss` and an opaque `launch`
value (from a patient's page, or through POST /smart/launch); the app sends the value back with
the `launch` scope and gets the EHR's patient, encounter and fhirContext in context, without a
patient picker. Launch values are single-use, short-lived and bound to one app (and one person
when a person launched), and every refusal tells the app which rule failed."""

import json
import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from fhir_api import audit_log
from fhir_api.models import Resource
from smart_auth.launch import do_create_launch
from smart_auth.models import LaunchHandle
from tests.consent.conftest import browser_for
from tests.flows.smart_ehr_launch.conftest import LAUNCH_URI, post_launch
from tests.smart_support import (
    Launch,
    authorize,
    claims_of,
    code_from,
    exchange,
    fhir_get,
    logged_in,
    query_of,
    start,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch openid fhirUser patient/*.rs"


def launch_params(launch_url):
    """`iss` and `launch` of the URL the EHR sends the browser to."""
    assert launch_url.startswith(LAUNCH_URI + "?"), launch_url
    params = query_of(launch_url)
    assert params["iss"] == settings.FHIR_BASE_URL  # byte for byte: the app's `aud`
    return params


def authorize_error(browser, app, handle, scope=SCOPES):
    """The error the app hears when it authorizes with `handle` (already logged in)."""
    launch = Launch.new(app, scope, extra={"launch": handle})
    location = start(browser, launch)["Location"]
    if location.startswith("/smart/authorize/"):  # checks made when the person is known
        location = browser.get(location)["Location"]
    params = query_of(location)
    assert "code" not in params and params["state"] == launch.state
    assert params["error"] == "invalid_request"
    return params["error_description"]


# --- Both ways in, end to end -------------------------------------------------------------


def test_a_clinician_launches_an_app_from_the_patients_page(
    clinician, ehr_app, patient_record, encounter
):
    ehr = browser_for(clinician)
    page = ehr.get(f"/smart/ehr/patients/{patient_record}")
    assert page.status_code == 200 and "EHR app" in page.content.decode()
    opened = ehr.submit(
        f"/smart/ehr/patients/{patient_record}",
        {"client_id": ehr_app.client_id, "encounter": encounter},
    )
    assert opened.status_code == 302
    params = launch_params(opened["Location"])

    launch = Launch.new(ehr_app, SCOPES + " launch/encounter", extra={"launch": params["launch"]})
    app_browser = logged_in(clinician)  # the app's window, signed in as the same person
    code = code_from(authorize(app_browser, launch), launch)  # no picker: the EHR chose
    token = exchange(Client(), launch, code).json()
    assert token["patient"] == patient_record
    assert token["encounter"] == encounter
    assert token["need_patient_banner"] is True
    assert "fhirContext" not in token
    assert {"launch", "launch/encounter"} <= set(token["scope"].split())
    claims = claims_of(token["access_token"])
    assert (claims["patient"], claims["encounter"]) == (patient_record, encounter)
    assert fhir_get(f"/fhir/Encounter/{encounter}", token["access_token"]).status_code == 200


def test_the_consent_page_names_the_launchs_patient_and_visit(
    clinician, ehr_app, patient_record, encounter
):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record, encounter=encounter)
    browser = logged_in(clinician)
    launch = Launch.new(ehr_app, SCOPES + " launch/encounter", extra={"launch": handle})
    html = browser.get(start(browser, launch)["Location"]).content.decode()
    assert "<dt>Record shared</dt>" in html and "Ada" in html
    assert "<dt>Visit</dt>" in html
    assert "Check-up, 2026-03-01 (Encounter/enc-1)" in html


def test_an_ehr_launches_an_app_through_the_api(
    admin_api, clinician, ehr_app, patient_record, encounter, report
):
    fhir_context = [
        {"reference": f"DiagnosticReport/{report}"},
        {"canonical": "http://example.org/Questionnaire/phq-9|1.0", "type": "Questionnaire"},
    ]
    response = post_launch(
        admin_api,
        {
            "clientId": ehr_app.client_id,
            "patient": patient_record,
            "encounter": encounter,
            "fhirContext": fhir_context,
            "needPatientBanner": False,
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == {"launch", "launchUrl", "expiresIn"}
    assert created["expiresIn"] == settings.SMART["LAUNCH_LIFETIME"] == 300
    assert launch_params(created["launchUrl"])["launch"] == created["launch"]

    launch = Launch.new(ehr_app, SCOPES + " launch/encounter", extra={"launch": created["launch"]})
    code = code_from(authorize(logged_in(clinician), launch), launch)
    token = exchange(Client(), launch, code).json()
    assert token["patient"] == patient_record
    assert token["encounter"] == encounter
    assert token["fhirContext"] == fhir_context
    assert token["need_patient_banner"] is False
    claims = claims_of(token["access_token"])
    assert claims["fhirContext"] == fhir_context and claims["encounter"] == encounter
    report_read = fhir_get(f"/fhir/DiagnosticReport/{report}", token["access_token"])
    assert report_read.status_code == 200


def test_the_launchs_patient_is_in_context_even_for_a_clinician_with_patient_scopes(
    admin_api, clinician, ehr_app, patient_record, other_patient
):
    created = post_launch(
        admin_api, {"clientId": ehr_app.client_id, "patient": other_patient}
    ).json()
    launch = Launch.new(ehr_app, "launch patient/*.rs", extra={"launch": created["launch"]})
    token = exchange(
        Client(), launch, code_from(authorize(logged_in(clinician), launch), launch)
    ).json()
    assert token["patient"] == other_patient
    assert fhir_get(f"/fhir/Patient/{patient_record}", token["access_token"]).status_code == 404
    assert fhir_get(f"/fhir/Patient/{other_patient}", token["access_token"]).status_code == 200


def test_launch_encounter_is_not_granted_without_an_encounter(clinician, ehr_app, patient_record):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    launch = Launch.new(ehr_app, SCOPES + " launch/encounter", extra={"launch": handle})
    token = exchange(
        Client(), launch, code_from(authorize(logged_in(clinician), launch), launch)
    ).json()
    assert "launch/encounter" not in token["scope"].split() and "encounter" not in token


def test_the_launch_scope_without_a_launch_is_not_granted(patient_user, ehr_app):
    launch = Launch.new(ehr_app, "launch patient/*.rs openid")
    token = exchange(
        Client(), launch, code_from(authorize(logged_in(patient_user), launch), launch)
    ).json()
    assert "launch" not in token["scope"].split()
    assert token["patient"] == "pat-1"  # a patient user's own record


# --- Every bad launch value, and what the app is told -------------------------------------


def test_a_launch_value_works_once(clinician, ehr_app, patient_record):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    browser = logged_in(clinician)
    first = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    assert code_from(authorize(browser, first), first)
    assert "already used" in authorize_error(browser, ehr_app, handle)


def test_an_expired_launch_is_refused(clinician, ehr_app, patient_record):
    """Seed 002 troubleshooting: "Invalid launch parameter — launch context expired"."""
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    LaunchHandle.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert "expired" in authorize_error(logged_in(clinician), ehr_app, handle)


def test_a_launch_expires_after_five_minutes(clinician, ehr_app, patient_record):
    before = timezone.now()
    do_create_launch(clinician, ehr_app, patient=patient_record)
    lifetime = LaunchHandle.objects.get().expires - before
    assert timedelta(seconds=299) < lifetime <= timedelta(seconds=301)


@pytest.mark.parametrize("handle", ["garbage", "x" * 500, "a b", "é" * 43])
def test_a_malformed_launch_is_refused(clinician, ehr_app, handle):
    """Seed 002 troubleshooting: "Invalid launch parameter — malformed"."""
    assert "malformed" in authorize_error(logged_in(clinician), ehr_app, handle)


def test_an_unknown_launch_is_refused(clinician, ehr_app):
    unknown = secrets.token_urlsafe(32)  # well-formed, never issued
    assert "unknown" in authorize_error(logged_in(clinician), ehr_app, unknown)


def test_a_launch_belongs_to_its_app(clinician, ehr_app, public_app, patient_record):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    public_app.scopes += " launch"
    public_app.save()
    description = authorize_error(logged_in(clinician), public_app, handle, "launch patient/*.rs")
    assert "issued for another app" in description
    assert LaunchHandle.objects.get().consumed_at is None  # still usable by its own app


def test_a_launch_belongs_to_the_person_who_opened_it(
    clinician, patient_user, ehr_app, patient_record
):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    assert "opened by another user" in authorize_error(logged_in(patient_user), ehr_app, handle)


def test_the_person_is_checked_when_they_sign_in_after_the_request(
    clinician, patient_user, ehr_app, patient_record
):
    handle = do_create_launch(clinician, ehr_app, patient=patient_record)
    browser = Client()
    launch = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    consent_url = start(browser, launch)["Location"]  # nobody signed in yet
    assert browser.get(consent_url)["Location"].startswith("/smart/login")
    browser.force_login(patient_user)
    params = query_of(browser.get(consent_url)["Location"])
    assert params["error"] == "invalid_request" and "code" not in params
    assert "opened by another user" in params["error_description"]
    assert LaunchHandle.objects.get().consumed_at is None
    audit_log.drain()
    audited = [
        json.loads(row.content) for row in Resource.objects.filter(resource_type="AuditEvent")
    ]
    refusals = [e for e in audited if "opened by another user" in e.get("outcomeDesc", "")]
    assert [e["outcome"] for e in refusals] == ["4"]  # a refused consent, in the trail


def test_an_api_launch_may_be_used_by_whoever_signs_in_but_once(
    admin_api, clinician, django_user_model, ehr_app, patient_record
):
    handle = post_launch(
        admin_api, {"clientId": ehr_app.client_id, "patient": patient_record}
    ).json()["launch"]
    first = Launch.new(ehr_app, SCOPES, extra={"launch": handle})
    assert code_from(authorize(logged_in(clinician), first), first)
    colleague = django_user_model.objects.create_user("colleague", password="pw-colleague-1")
    assert "already used" in authorize_error(logged_in(colleague), ehr_app, handle)


def test_a_patient_cannot_use_a_launch_for_someone_elses_record(
    admin_api, patient_user, ehr_app, other_patient
):
    handle = post_launch(
        admin_api, {"clientId": ehr_app.client_id, "patient": other_patient}
    ).json()["launch"]
    description = authorize_error(logged_in(patient_user), ehr_app, handle)
    assert "another patient's record" in description
