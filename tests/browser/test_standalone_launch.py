"""A standalone launch in a real browser: the app sends the person to /smart/authorize, they
sign in, untick a scope (or pick a patient), approve, and the app gets a code whose token
carries exactly what they approved."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser.app_side import authorize_url, wait_for_app
from tests.browser.person import pick_patient, sign_in, untick
from tests.smart_support import Launch, claims_of, exchange, make_app

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


@pytest.fixture
def app(db, app_server):
    return make_app(
        "Blood Pressure Tracker",
        confidential=False,
        scopes=SCOPES,
        redirect_uri=app_server.redirect_uri,
    )[0]


def test_a_patient_signs_in_unticks_a_scope_and_the_token_lacks_it(
    live_base, page, screens, app, patient_user, patient_record
):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    page.goto(authorize_url(live_base, launch))
    screens.take("sign-in")
    expect(page.locator("main")).to_contain_text("choose what Blood Pressure Tracker may see")
    sign_in(page, "ada", "pw-ada-123")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Allow Blood Pressure Tracker")
    screens.take("consent")
    untick(page, "offline_access")
    screens.take("consent-unticked")
    page.get_by_role("button", name="Approve").click()

    params = wait_for_app(page, app.redirect_uris)
    assert params["state"] == launch.state
    token = exchange(Client(), launch, params["code"]).json()
    assert token["scope"].split() == [s for s in SCOPES.split() if s != "offline_access"]
    assert token["patient"] == patient_record
    assert "refresh_token" not in token
    assert claims_of(token["access_token"])["patient"] == patient_record


def test_a_clinician_picks_a_patient_by_name(
    live_base, page, screens, app, clinician, patient_record, other_patient
):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    page.goto(authorize_url(live_base, launch))
    sign_in(page, "osler", "pw-osler-123")
    page.get_by_text("Step 1 of 2").wait_for()
    screens.take("consent")
    page.get_by_role("button", name="Approve and choose the patient").click()

    page.get_by_text("Step 2 of 2").wait_for()
    screens.take("picker")
    page.get_by_role("searchbox", name="Patient name").fill("Grac")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("group", name="Patients whose name starts with “Grac”").wait_for()
    assert page.get_by_role("radio").count() == 1
    screens.take("picker-search")
    pick_patient(page, "Grace Hopper")
    page.get_by_role("button", name="Continue with this patient").click()

    params = wait_for_app(page, app.redirect_uris)
    token = exchange(Client(), launch, params["code"]).json()
    assert token["patient"] == other_patient
    assert token["scope"].split() == SCOPES.split()


def test_deny_sends_access_denied_and_the_state_back_to_the_app(live_base, page, app, patient_user):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris, state="xyz/state+1")
    page.goto(authorize_url(live_base, launch))
    sign_in(page, "ada", "pw-ada-123")
    page.get_by_role("button", name="Deny").click()

    params = wait_for_app(page, app.redirect_uris)
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz/state+1"
    assert "code" not in params
