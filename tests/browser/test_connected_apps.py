"""Connected apps in a real browser: the person sees what they granted, presses Revoke
access, and the app's tokens stop working at once."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser.person import sign_in
from tests.smart_support import fhir_get, full_launch, refresh

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def test_revoking_an_app_on_connected_apps_stops_its_tokens(
    live_base, page, screens, patient_user, public_app, patient_record
):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get(f"/fhir/Patient/{patient_record}", token["access_token"]).status_code == 200

    page.goto(live_base + "/smart/manage")
    sign_in(page, "ada", "pw-ada-123")
    card = page.get_by_role("article", name="Public app")
    expect(card).to_contain_text("Keeps access until you revoke it")
    expect(card).to_contain_text("Read all of your health records")
    screens.take("connected-apps")
    card.get_by_role("button", name="Revoke access for Public app").click()

    expect(page.get_by_role("status")).to_have_text(
        "Access revoked: the app can no longer use your data."
    )
    expect(page.get_by_role("article")).to_have_count(0)
    expect(page.get_by_text("No app can use your data right now.")).to_be_visible()
    screens.take("revoked")
    refused = fhir_get(f"/fhir/Patient/{patient_record}", token["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 400
