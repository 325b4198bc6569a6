"""The consent pages through a CSRF-enforcing browser: what they show, what each button does,
and that every decision needs the page's CSRF token."""

import re

import pytest
from django.test import Client

from smart_auth.models import LaunchHandle
from smart_auth.patients import PAGE_SIZE
from tests.consent.conftest import Browser, browser_for
from tests.smart_support import (
    Launch,
    claims_of,
    code_from,
    create_patient,
    exchange,
    make_app,
    query_of,
    start,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def consent_url_for(browser, app, scopes=SCOPES, **kwargs):
    launch = Launch.new(app, scopes, **kwargs)
    response = start(browser, launch)
    assert response.status_code == 302, response.content
    return launch, response["Location"]


def ticked(page):
    return re.findall(r'name="scope" value="([^"]+)"[^>]*checked', page.content.decode())


# --- The consent page -------------------------------------------------------------------------


def test_the_consent_page_names_the_app_its_host_and_each_scope(patient_browser, public_app):
    _launch, url = consent_url_for(patient_browser, public_app)
    page = patient_browser.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Public app" in html and "app.example.org" in html
    assert "Read all of your health records" in html
    assert "Keep access after you close the app, until you revoke it" in html
    assert ticked(page) == SCOPES.split()
    assert "Your own record:" in html and "Ada Lovelace" in html and "1 January 1990" in html
    assert page["X-Frame-Options"] == "DENY"
    assert "no-store" in page["Cache-Control"]


def test_a_clinician_is_told_the_patient_comes_next(clinician_browser, public_app):
    _launch, url = consent_url_for(clinician_browser, public_app)
    html = clinician_browser.get(url).content.decode()
    assert "You choose the patient on the next page." in html
    assert "Read all of the selected patient&#x27;s health records" in html
    assert "Step 1 of 2" in html


def test_approve_with_a_scope_unticked_grants_the_rest(patient_browser, public_app):
    launch, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    approved = ["launch/patient", "openid", "patient/*.rs"]
    response = patient_browser.submit(url, {"scope": approved, "approve": "1"})
    assert response.status_code == 302
    token = exchange(Client(), launch, code_from(response["Location"], launch)).json()
    assert token["scope"].split() == approved
    assert "refresh_token" not in token  # offline_access was unticked
    assert claims_of(token["access_token"])["patient"] == "pat-1"


def test_deny_sends_access_denied_to_the_app(patient_browser, public_app):
    launch, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    response = patient_browser.submit(url, {"scope": SCOPES.split(), "deny": "1"})
    params = query_of(response["Location"])
    assert response["Location"].startswith(launch.redirect_uri + "?")
    assert params["error"] == "access_denied" and params["state"] == launch.state
    assert "code" not in params


def test_approve_with_nothing_ticked_behaves_like_deny(patient_browser, public_app):
    _launch, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    response = patient_browser.submit(url, {"approve": "1"})
    assert query_of(response["Location"])["error"] == "access_denied"
    assert patient_browser.get(url).status_code == 400  # the request is over


def test_a_forged_scope_shows_the_page_again_with_an_error(patient_browser, public_app):
    launch, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    response = patient_browser.submit(url, {"scope": ["openid", "user/*.read"], "approve": "1"})
    assert response.status_code == 400
    assert "Location" not in response
    html = response.content.decode()
    assert 'role="alert"' in html and "did not ask for user/*.read" in html
    # the request is still pending and can be approved properly
    response = patient_browser.submit(url, {"scope": ["openid"], "approve": "1"})
    assert code_from(response["Location"], launch)


@pytest.mark.parametrize("decision", [{"approve": "1"}, {"deny": "1"}])
def test_a_decision_without_the_csrf_token_is_refused(patient_browser, public_app, decision):
    _launch, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    response = patient_browser.post(url, {"scope": SCOPES.split(), **decision})
    assert response.status_code == 403
    assert b"This page has expired" in response.content
    assert patient_browser.get(url).status_code == 200  # nothing was decided


def test_a_remembered_approval_skips_the_page(patient_browser, public_app):
    _first, url = consent_url_for(patient_browser, public_app)
    patient_browser.get(url)
    patient_browser.submit(url, {"scope": ["openid", "patient/*.rs"], "approve": "1"})
    launch, url = consent_url_for(patient_browser, public_app)
    response = patient_browser.get(url)
    assert response.status_code == 302
    token = exchange(Client(), launch, code_from(response["Location"], launch)).json()
    assert token["scope"].split() == ["openid", "patient/*.rs"]


def test_someone_elses_ehr_launch_is_refused(clinician, patient_user, patient_record):
    from smart_auth.launch import do_create_launch

    app, _ = make_app("EHR app", confidential=False, launch_uri="https://app.example.org/l")
    handle = do_create_launch(clinician, app, patient=patient_record)
    browser = browser_for(patient_user)
    _launch, url = consent_url_for(browser, app, "launch patient/*.rs", extra={"launch": handle})
    params = query_of(browser.get(url)["Location"])
    assert params["error"] == "invalid_request"
    assert params["error_description"].endswith("opened by another user")
    assert LaunchHandle.objects.get().consumed_at is None
    assert browser.get(url).status_code == 400  # the request is over


# --- The patient picker -----------------------------------------------------------------------


def to_picker(browser, app, scopes=SCOPES):
    launch, url = consent_url_for(browser, app, scopes)
    browser.get(url)
    response = browser.submit(url, {"scope": scopes.split(), "approve": "1"})
    assert response["Location"] == url + "/patient"
    return launch, response["Location"]


def test_the_picker_comes_only_after_the_consent_page(clinician_browser, public_app):
    _launch, url = consent_url_for(clinician_browser, public_app)
    response = clinician_browser.get(url + "/patient")
    assert response.status_code == 302 and response["Location"] == url


def test_the_picker_searches_by_name(clinician_browser, public_app, patient_record, other_patient):
    _launch, picker = to_picker(clinician_browser, public_app)
    page = clinician_browser.get(picker, {"name": "hop"})
    assert [p.id for p in page.context["results"].patients] == [other_patient]
    html = page.content.decode()
    assert "Grace Hopper" in html and "Ada Lovelace" not in html
    assert "Patients whose name starts with “hop”" in html
    empty = clinician_browser.get(picker, {"name": "zz"})
    assert "No patient\u2019s name starts with “zz”" in empty.content.decode()


def test_the_picker_pages_through_patients(clinician_browser, public_app):
    for number in range(PAGE_SIZE + 3):
        create_patient(f"p{number:02d}", f"Given{number:02d}", "Smith")
    _launch, picker = to_picker(clinician_browser, public_app)
    first = clinician_browser.get(picker, {"name": "smi"})
    html = first.content.decode()
    assert len(first.context["results"].patients) == PAGE_SIZE
    assert 'href="?name=smi&amp;page=2"' in html and "page=0" not in html
    second = clinician_browser.get(picker, {"name": "smi", "page": "2"})
    html = second.content.decode()
    assert len(second.context["results"].patients) == 3
    assert 'href="?name=smi&amp;page=1"' in html and "page=3" not in html


def test_picking_a_patient_puts_them_in_context(clinician_browser, public_app, other_patient):
    launch, picker = to_picker(clinician_browser, public_app)
    clinician_browser.get(picker)
    response = clinician_browser.submit(picker, {"patient": other_patient, "approve": "1"})
    token = exchange(Client(), launch, code_from(response["Location"], launch)).json()
    assert token["patient"] == other_patient


def test_picking_nobody_shows_an_error(clinician_browser, public_app, patient_record):
    _launch, picker = to_picker(clinician_browser, public_app)
    response = clinician_browser.submit(picker, {"approve": "1"})
    assert response.status_code == 400
    assert "Choose a patient from the list." in response.content.decode()


def test_deny_on_the_picker_sends_access_denied(clinician_browser, public_app, patient_record):
    launch, picker = to_picker(clinician_browser, public_app)
    response = clinician_browser.submit(picker, {"deny": "1"})
    params = query_of(response["Location"])
    assert params["error"] == "access_denied" and params["state"] == launch.state


def test_picking_needs_the_csrf_token(clinician_browser, public_app, patient_record):
    _launch, picker = to_picker(clinician_browser, public_app)
    assert clinician_browser.post(picker, {"patient": patient_record}).status_code == 403


# --- Sign in and out --------------------------------------------------------------------------


def test_the_login_page_names_the_waiting_app(patient_user, public_app):
    browser = Browser()
    _launch, url = consent_url_for(browser, public_app)
    login = browser.get(url)["Location"]
    page = browser.get(login)
    html = page.content.decode()
    assert "Public app</span> asks for access" in html
    assert 'autocomplete="current-password"' in html
    response = browser.submit(
        "/smart/login", {"username": "ada", "password": "pw-ada-123", "next": url}
    )
    assert response.status_code == 302 and response["Location"] == url


def test_the_login_page_without_a_request(db):
    html = Browser().get("/smart/login").content.decode()
    assert "Sign in to see and manage the apps" in html


def test_a_wrong_password_is_explained(patient_user):
    browser = Browser()
    response = browser.submit("/smart/login", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_login_and_logout_need_the_csrf_token(patient_browser, patient_user):
    assert Browser().post("/smart/login", {"username": "ada", "password": "x"}).status_code == 403
    assert patient_browser.post("/smart/logout").status_code == 403
    assert patient_browser.get("/smart/logout").status_code == 405


def test_logout_signs_out_and_says_so(patient_browser):
    response = patient_browser.submit("/smart/logout")
    assert response.status_code == 302 and response["Location"] == "/smart/login"
    page = patient_browser.get(response["Location"])
    assert "You have signed out." in page.content.decode()
    assert patient_browser.get("/smart/manage").status_code == 302
