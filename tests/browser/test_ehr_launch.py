"""An EHR launch in a real browser: a clinician finds a patient, opens their page, chooses a
visit and presses Launch; the app receives `iss` and `launch`, sends the browser back to
/smart/authorize with them, and its token carries that patient and visit without a picker."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from fhir_api import store
from tests.browser.app_side import authorize_url, wait_for_app
from tests.browser.person import click_row, sign_in
from tests.smart_support import Launch, claims_of, exchange, make_app

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = "launch openid fhirUser patient/*.rs"


@pytest.fixture
def encounter(patient_record):
    store.do_create(
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "type": [{"text": "Blood pressure check"}],
            "period": {"start": "2026-03-02T09:00:00Z"},
            "subject": {"reference": f"Patient/{patient_record}"},
        },
        fhir_id="enc-bp",
    )
    return "enc-bp"


def test_a_clinician_launches_an_app_from_a_patients_page(
    live_base, page, screens, app_server, clinician, patient_record, other_patient, encounter
):
    app, _ = make_app(
        "Heart Chart",
        confidential=False,
        scopes=SCOPES,
        redirect_uri=app_server.redirect_uri,
        launch_uri=app_server.launch_uri,
    )
    page.goto(live_base + "/smart/ehr/patients")
    sign_in(page, "osler", "pw-osler-123")
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")
    screens.take("patients")
    page.get_by_role("searchbox", name="Patient name").fill("Love")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Ada Lovelace").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    click_row(page, page.get_by_role("radio", name="Blood pressure check"))
    screens.take("patient-page")
    page.get_by_role("button", name="Launch Heart Chart").click()

    # The app's launch URI gets the FHIR base and a launch handle; the app starts its request.
    opened = wait_for_app(page, app_server.launch_uri)
    assert opened["iss"] == live_base + "/fhir"
    launch = Launch.new(app, SCOPES, redirect_uri=app_server.redirect_uri)
    launch.extra = {"launch": opened["launch"]}
    page.goto(authorize_url(live_base, launch))

    expect(page.locator(".facts")).to_contain_text("Ada Lovelace")
    screens.take("consent")
    page.get_by_role("button", name="Approve").click()
    params = wait_for_app(page, app_server.redirect_uri)
    token = exchange(Client(), launch, params["code"]).json()
    assert token["patient"] == patient_record
    assert token["encounter"] == encounter
    assert token["need_patient_banner"] is True
    assert claims_of(token["access_token"])["encounter"] == encounter
