"""The whole standalone launch with the keyboard alone: Tab to move, Space to tick, Enter to
press, typing into fields; no click. Every element reached shows a visible focus ring."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser.app_side import authorize_url, wait_for_app
from tests.browser.person import tab_to
from tests.smart_support import Launch, exchange, make_app

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def test_a_clinician_completes_a_launch_with_the_keyboard_alone(
    live_base, page, screens, app_server, clinician, patient_record, other_patient
):
    app, _ = make_app(
        "Keyboard Charts", confidential=False, scopes=SCOPES, redirect_uri=app_server.redirect_uri
    )
    launch = Launch.new(app, SCOPES, redirect_uri=app_server.redirect_uri)
    page.goto(authorize_url(live_base, launch))

    # Sign in: the username field has the focus already; Tab to the password, Enter submits.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("osler")
    tab_to(page, page.get_by_label("Password"), limit=1)
    page.keyboard.type("pw-osler-123")
    page.keyboard.press("Enter")

    # Consent: the skip link comes first; untick offline_access with Space, Enter on Approve.
    expect(page.get_by_role("heading", name="Allow Keyboard Charts")).to_be_visible()
    skip = page.get_by_role("link", name="Skip to main content")
    assert tab_to(page, skip, limit=1) == ["Skip to main content"]
    screens.take("consent-skip-link-focused")
    offline = page.get_by_role("checkbox", name="offline_access")
    tab_to(page, offline)
    page.keyboard.press("Space")
    expect(offline).not_to_be_checked()
    screens.take("consent-checkbox-focused")
    approve = page.get_by_role("button", name="Approve and choose the patient")
    tab_to(page, approve)
    screens.take("consent-approve-focused")
    page.keyboard.press("Enter")

    # Picker: type a name and Enter to search, Space to pick, Enter on Continue.
    expect(page.get_by_text("Step 2 of 2")).to_be_visible()
    search = page.get_by_role("searchbox", name="Patient name")
    tab_to(page, search)
    page.keyboard.type("hop")
    page.keyboard.press("Enter")
    expect(page.get_by_role("group", name="Patients whose name starts with “hop”")).to_be_visible()
    grace = page.get_by_role("radio", name="Grace Hopper")
    tab_to(page, grace)
    page.keyboard.press("Space")
    expect(grace).to_be_checked()
    screens.take("picker-patient-focused")
    tab_to(page, page.get_by_role("button", name="Continue with this patient"))
    page.keyboard.press("Enter")

    params = wait_for_app(page, app_server.redirect_uri)
    token = exchange(Client(), launch, params["code"]).json()
    assert token["patient"] == other_patient
    assert "offline_access" not in token["scope"].split()
    assert "refresh_token" not in token
