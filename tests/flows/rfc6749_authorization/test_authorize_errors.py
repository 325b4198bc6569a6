"""/smart/authorize error handling (RFC 6749 §4.1.2.1, SMART App Launch 2.2).

An unknown client or a redirect URI that is not an exact registered match gets an error page,
never a redirect; every other error goes back to the app with error, error_description and the
exact state, and no code."""

import time

import pytest
from django.test import Client

from smart_auth.authorization import SESSION_KEY
from tests.smart_support import (
    REDIRECT_URI,
    Launch,
    authorize,
    code_from,
    logged_in,
    make_app,
    query_of,
    start,
)

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs"


def assert_error_page(response):
    assert response.status_code == 400
    assert "Location" not in response
    assert b"Cannot continue" in response.content


def assert_app_error(response, launch, error):
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(launch.redirect_uri + "?")
    params = query_of(location)
    assert params["error"] == error, params
    assert params["error_description"]
    assert params["state"] == launch.state
    assert "code" not in params
    return params


def test_unknown_client_gets_an_error_page(patient_user, public_app):
    launch = Launch.new(public_app, SCOPES)
    params = {**launch.params(), "client_id": "no-such-client"}
    assert_error_page(logged_in(patient_user).get("/smart/authorize", params))
    params.pop("client_id")
    assert_error_page(logged_in(patient_user).get("/smart/authorize", params))


def test_inactive_app_gets_an_error_page(patient_user, public_app):
    public_app.is_active = False
    public_app.save()
    assert_error_page(start(logged_in(patient_user), Launch.new(public_app, SCOPES)))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/",
        REDIRECT_URI + "?extra=1",
        REDIRECT_URI.replace("https", "http"),
        "https://evil.example.com/callback",
        REDIRECT_URI.upper(),
    ],
)
def test_redirect_uri_must_match_exactly(patient_user, public_app, redirect_uri):
    launch = Launch.new(public_app, SCOPES, redirect_uri=redirect_uri)
    assert_error_page(start(logged_in(patient_user), launch))


def test_unknown_client_error_page_for_anonymous_users_too(public_app):
    params = {**Launch.new(public_app, SCOPES).params(), "client_id": "nope"}
    assert_error_page(Client().get("/smart/authorize", params))


def test_missing_pkce_is_refused_before_consent(patient_user, public_app):
    launch = Launch.new(public_app, SCOPES)
    launch.challenge = None
    launch.method = None
    assert_app_error(start(logged_in(patient_user), launch), launch, "invalid_request")


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_only_s256_pkce_is_accepted(patient_user, public_app, method):
    launch = Launch.new(public_app, SCOPES, method=method)
    assert_app_error(start(logged_in(patient_user), launch), launch, "invalid_request")


def test_a_challenge_that_is_not_s256_shaped_is_refused(patient_user, public_app):
    launch = Launch.new(public_app, SCOPES)
    launch.challenge = "too-short"
    assert_app_error(start(logged_in(patient_user), launch), launch, "invalid_request")


@pytest.mark.parametrize(
    "aud", ["https://inferno.healthit.gov/invalid_aud", "", "http://127.0.0.1:8000"]
)
def test_aud_must_be_the_fhir_base(patient_user, public_app, aud):
    launch = Launch.new(public_app, SCOPES, aud=aud)
    params = assert_app_error(start(logged_in(patient_user), launch), launch, "invalid_request")
    assert "aud" in params["error_description"]


def test_aud_with_a_trailing_slash_is_the_same_base(patient_user, public_app, settings):
    launch = Launch.new(public_app, SCOPES, aud=settings.FHIR_BASE_URL + "/")
    assert code_from(authorize(logged_in(patient_user), launch), launch)


def test_unsupported_response_type_redirects_with_an_error(patient_user, public_app):
    for response_type, error in (
        ("token", "unauthorized_client"),
        ("bogus", "unsupported_response_type"),
    ):
        launch = Launch.new(public_app, SCOPES, extra={"response_type": response_type})
        assert_app_error(start(logged_in(patient_user), launch), launch, error)


def test_a_request_with_no_registered_scope_is_invalid_scope(patient_user, public_app):
    launch = Launch.new(public_app, "user/*.cruds system/*.read")
    assert_app_error(start(logged_in(patient_user), launch), launch, "invalid_scope")


def test_deny_redirects_with_access_denied(patient_user, public_app):
    browser = logged_in(patient_user)
    launch = Launch.new(public_app, SCOPES)
    consent_url = start(browser, launch)["Location"]
    response = browser.post(consent_url, {"deny": "1"})
    assert_app_error(response, launch, "access_denied")
    # the pending request is gone: it cannot be approved afterwards
    assert_error_page(browser.post(consent_url, {"scope": SCOPES.split(), "approve": "1"}))


def test_approving_no_scope_at_all_is_access_denied(patient_user, public_app):
    browser = logged_in(patient_user)
    launch = Launch.new(public_app, SCOPES)
    consent_url = start(browser, launch)["Location"]
    assert_app_error(browser.post(consent_url, {"approve": "1"}), launch, "access_denied")


@pytest.mark.parametrize(
    "state", ["a+b c/=%?&é", "plain-state", "  spaced  ", "eyJhbGciOiJub25lIn0.e30."]
)
def test_state_comes_back_byte_for_byte(patient_user, public_app, state):
    launch = Launch.new(public_app, SCOPES, state=state)
    url = authorize(logged_in(patient_user), launch)
    assert query_of(url)["state"] == state
    denied = Launch.new(public_app, SCOPES, state=state, aud="https://wrong.example")
    assert query_of(start(logged_in(patient_user), denied)["Location"])["state"] == state


def test_prompt_none_without_a_login_is_login_required(public_app):
    launch = Launch.new(public_app, SCOPES, extra={"prompt": "none"})
    assert_app_error(start(Client(), launch), launch, "login_required")


def test_prompt_none_without_a_previous_approval_is_consent_required(patient_user, public_app):
    browser = logged_in(patient_user)
    launch = Launch.new(public_app, SCOPES, extra={"prompt": "none"})
    consent_url = start(browser, launch)["Location"]
    assert_app_error(browser.get(consent_url), launch, "consent_required")


def test_an_anonymous_user_is_sent_to_log_in_first(public_app):
    browser = Client()
    consent_url = start(browser, Launch.new(public_app, SCOPES))["Location"]
    response = browser.get(consent_url)
    assert response.status_code == 302
    assert response["Location"].startswith("/smart/login?next=")


def test_a_pending_request_belongs_to_its_browser_session(patient_user, public_app):
    consent_url = start(logged_in(patient_user), Launch.new(public_app, SCOPES))["Location"]
    assert_error_page(logged_in(patient_user).get(consent_url))


def test_a_pending_request_expires(patient_user, public_app, settings):
    browser = logged_in(patient_user)
    consent_url = start(browser, Launch.new(public_app, SCOPES))["Location"]
    session = browser.session
    for entry in session[SESSION_KEY].values():
        entry["created"] = time.time() - settings.SMART["PENDING_REQUEST_LIFETIME"] - 1
    session.save()
    assert_error_page(browser.get(consent_url))


def test_an_approval_is_remembered_for_the_same_scope_set(patient_user, public_app):
    browser = logged_in(patient_user)
    first = Launch.new(public_app, SCOPES)
    url = authorize(browser, first, approve=["launch/patient", "patient/*.rs"])
    assert query_of(url)["code"]
    again = Launch.new(public_app, SCOPES)
    consent_url = start(browser, again)["Location"]
    response = browser.get(consent_url)
    assert response.status_code == 302  # no consent page this time
    assert query_of(response["Location"])["code"]
    different = Launch.new(public_app, SCOPES + " offline_access")
    assert browser.get(start(browser, different)["Location"]).status_code == 200


def test_prompt_consent_asks_again(patient_user, public_app):
    browser = logged_in(patient_user)
    authorize(browser, Launch.new(public_app, SCOPES))
    again = Launch.new(public_app, SCOPES, extra={"prompt": "consent"})
    assert browser.get(start(browser, again)["Location"]).status_code == 200


def test_a_clinician_must_pick_an_existing_patient(clinician, public_app, patient_record):
    browser = logged_in(clinician)
    launch = Launch.new(public_app, SCOPES)
    consent_url = start(browser, launch)["Location"]
    picker = browser.post(consent_url, {"scope": SCOPES.split(), "approve": "1"})["Location"]
    assert browser.post(picker, {"patient": "no-such-patient"}).status_code == 400
    assert browser.post(picker, {}).status_code == 400
    response = browser.post(picker, {"patient": patient_record})
    assert query_of(response["Location"])["code"]


def test_a_patient_user_cannot_pick_someone_else(patient_user, public_app, other_patient):
    from tests.smart_support import exchange

    launch = Launch.new(public_app, SCOPES)
    code = code_from(authorize(logged_in(patient_user), launch, patient=other_patient), launch)
    token = exchange(Client(), launch, code).json()
    assert token["patient"] != other_patient


def test_user_scopes_without_patient_scopes_need_no_picker(clinician):
    app, _ = make_app("User app", confidential=False, scopes="openid fhirUser user/*.rs")
    launch = Launch.new(app, "openid fhirUser user/*.rs")
    assert code_from(authorize(logged_in(clinician), launch), launch)
