"""Every failure a person can meet on these pages gets a page that says what happened and what
to do next, with the right status, and never a redirect to an app that cannot be trusted."""

import time

import pytest
from django.test import Client, override_settings

from smart_auth.authorization import SESSION_KEY
from tests.consent.conftest import Browser
from tests.smart_support import Launch, make_app, start

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid patient/*.rs"


def assert_error_page(response, status, heading):
    assert response.status_code == status
    assert "Location" not in response
    html = response.content.decode()
    assert "Cannot continue" in html
    assert f"<h1>{heading}</h1>" in html
    assert "What you can do" in html
    assert response["X-Frame-Options"] == "DENY"
    return html


def test_an_unknown_app(patient_browser, public_app):
    params = {**Launch.new(public_app, SCOPES).params(), "client_id": "no-such-app"}
    html = assert_error_page(
        patient_browser.get("/smart/authorize", params), 400, "This app is not recognised"
    )
    assert "No data has been shared." in html
    assert "Technical detail" in html


def test_a_switched_off_app(patient_browser):
    app, _ = make_app("Old app", confidential=False, is_active=False)
    response = start(patient_browser, Launch.new(app, SCOPES))
    assert_error_page(response, 400, "This app is not recognised")


@pytest.mark.parametrize(
    "redirect_uri", ["https://evil.example.com/cb", "https://app.example.org/callback/"]
)
def test_an_untrusted_redirect_uri(patient_browser, public_app, redirect_uri):
    response = start(patient_browser, Launch.new(public_app, SCOPES, redirect_uri=redirect_uri))
    html = assert_error_page(response, 400, "This app\u2019s return address is not trusted")
    assert "evil.example.com" not in html.split("Technical detail")[0]


def test_an_expired_request(patient_browser, public_app, settings):
    url = start(patient_browser, Launch.new(public_app, SCOPES))["Location"]
    session = patient_browser.session
    for entry in session[SESSION_KEY].values():
        entry["created"] = time.time() - settings.SMART["PENDING_REQUEST_LIFETIME"] - 1
    session.save()
    html = assert_error_page(patient_browser.get(url), 400, "This request has expired")
    assert "Go back to the app and start again." in html


def test_a_request_from_another_browser(patient_browser, patient_user, public_app):
    url = start(patient_browser, Launch.new(public_app, SCOPES))["Location"]
    other = Browser()
    other.force_login(patient_user)
    assert_error_page(other.get(url), 400, "This request has expired")
    assert_error_page(other.get(url + "/patient"), 400, "This request has expired")


def test_a_used_request(patient_browser, public_app):
    url = start(patient_browser, Launch.new(public_app, SCOPES))["Location"]
    patient_browser.get(url)
    patient_browser.submit(url, {"scope": ["openid"], "approve": "1"})
    html = assert_error_page(
        patient_browser.submit(url, {"deny": "1"}), 400, "This request has expired"
    )
    # The approval went through: the page must not claim that nothing was shared.
    assert "No data has been shared" not in html
    assert 'href="/smart/manage"' in html


def test_a_form_without_its_csrf_token(patient_user):
    response = Browser().post("/smart/login", {"username": "ada", "password": "pw-ada-123"})
    html = assert_error_page(response, 403, "This page has expired")
    assert "reload the page" in html


@override_settings(DEBUG=False)
def test_a_page_that_does_not_exist(db):
    response = Client().get("/smart/no-such-page")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html and "Connected apps" in html


def test_the_server_error_page_renders_without_a_request():
    from django.template.loader import get_template

    html = get_template("500.html").render()
    assert "<h1>Something went wrong on our side</h1>" in html
    assert "consent/consent.css" in html
