"""The failures a person can meet in the browser, each on a page that says what happened and
what to do, in the site's style (never a bare error, never a redirect to an untrusted
address); and the failures the app must hear, which go back to the app as SMART requires."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from smart_auth.launch import do_create_launch
from smart_auth.models import LaunchHandle
from tests.browser.app_side import authorize_url, wait_for_app
from tests.browser.person import sign_in, untick
from tests.smart_support import Launch, make_app

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = "launch/patient openid fhirUser patient/*.rs"


@pytest.fixture
def app(db, app_server):
    return make_app(
        "Sleep Diary",
        confidential=False,
        scopes=SCOPES + " launch",
        redirect_uri=app_server.redirect_uri,
        launch_uri=app_server.launch_uri,
    )[0]


def expect_error_page(page, response, status, heading):
    assert response.status == status
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".eyebrow")).to_have_text("Cannot continue")
    expect(page.get_by_role("heading", name="What you can do")).to_be_visible()


def test_an_unknown_app_gets_the_error_page(live_base, page, screens, app):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    url = authorize_url(live_base, launch).replace(app.client_id, "no-such-app")
    response = page.goto(url)
    expect_error_page(page, response, 400, "This app is not recognised")
    expect(page.get_by_text("No data has been shared.")).to_be_visible()
    screens.take("unknown-app")


def test_an_untrusted_redirect_uri_gets_the_error_page_not_a_redirect(
    live_base, page, screens, app
):
    launch = Launch.new(app, SCOPES, redirect_uri="https://attacker.example.net/steal")
    response = page.goto(authorize_url(live_base, launch))
    expect_error_page(
        page,
        response,
        400,
        "This app\N{RIGHT SINGLE QUOTATION MARK}s return address is not trusted",
    )
    assert page.url.startswith(live_base)
    page.locator("summary", has_text="Technical detail").click()
    screens.take("bad-redirect-uri")


def test_going_back_to_a_finished_request_says_it_expired(
    live_base, page, screens, app, patient_user
):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    page.goto(authorize_url(live_base, launch))
    sign_in(page, "ada", "pw-ada-123")
    page.get_by_role("button", name="Approve").click()
    wait_for_app(page, app.redirect_uris)

    response = page.go_back()  # the consent page again, whose request is used up
    expect_error_page(page, response, 400, "This request has expired")
    expect(page.get_by_text("Go back to the app and start again.")).to_be_visible()
    screens.take("request-expired")


def test_a_form_without_its_cookies_gets_the_page_expired_page(
    live_base, page, context, screens, app, patient_user
):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    page.goto(authorize_url(live_base, launch))
    sign_in(page, "ada", "pw-ada-123")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Allow Sleep Diary")
    context.clear_cookies()
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Approve").click()
    expect_error_page(page, posted.value, 403, "This page has expired")
    expect(page.get_by_text("Check that your browser allows cookies")).to_be_visible()
    screens.take("csrf-failure")


def test_a_missing_page_gets_the_styled_not_found_page(live_base, page, screens):
    response = page.goto(live_base + "/smart/no-such-page")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    screens.take("not-found")


def test_a_wrong_password_is_said_on_the_sign_in_page(live_base, page, screens, patient_user):
    page.goto(live_base + "/smart/manage")
    sign_in(page, "ada", "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    screens.take("wrong-password")


def test_unticking_every_scope_denies_and_the_app_hears_access_denied(
    live_base, page, screens, app, patient_user
):
    launch = Launch.new(app, SCOPES, redirect_uri=app.redirect_uris)
    page.goto(authorize_url(live_base, launch))
    sign_in(page, "ada", "pw-ada-123")
    for scope in SCOPES.split():
        untick(page, scope)
    screens.take("nothing-ticked")
    page.get_by_role("button", name="Approve").click()
    params = wait_for_app(page, app.redirect_uris)
    assert params["error"] == "access_denied"
    assert params["error_description"] == "No scopes were approved"
    assert params["state"] == launch.state


def test_an_expired_ehr_launch_goes_back_to_the_app_with_invalid_request(
    live_base, page, app, clinician, patient_record
):
    """SMART: once the redirect URI is trusted, the app hears the error (and can relaunch)."""
    handle = do_create_launch(clinician, app, patient=patient_record)
    LaunchHandle.objects.update(expires=timezone.now() - timedelta(minutes=1))
    launch = Launch.new(app, "launch openid", redirect_uri=app.redirect_uris)
    launch.extra = {"launch": handle}
    page.goto(live_base + "/smart/login")
    sign_in(page, "osler", "pw-osler-123")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connected apps")
    page.goto(authorize_url(live_base, launch))
    params = wait_for_app(page, app.redirect_uris)
    assert params["error"] == "invalid_request"
    assert "expired" in params["error_description"]
    assert "code" not in params
