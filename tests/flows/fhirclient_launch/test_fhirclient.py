"""The standard Python SMART client (`fhirclient` from PyPI) completes a standalone launch
against the running server: it discovers the endpoints from /fhir/metadata, sends the browser
to /smart/authorize with PKCE, exchanges the code and reads the patient in context."""

import re
from urllib.parse import urljoin

import pytest
import requests
from django.test import Client
from fhirclient import client as fhir_client

from tests.smart_support import make_app

pytestmark = pytest.mark.django_db(transaction=True)

SCOPE = "launch/patient openid fhirUser patient/*.read offline_access"


@pytest.fixture
def live_base(live_server, settings):
    """Point every absolute URL of the server at the live server."""
    base = live_server.url
    settings.PUBLIC_BASE_URL = base
    settings.FHIR_BASE_URL = base + "/fhir"
    settings.FHIR = {**settings.FHIR, "BASE_URL": base + "/fhir"}
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": base}
    settings.SMART = {**settings.SMART, "ADMIN_AUDIENCE": base + "/smart/apps"}
    return base


def browser_for(user, base):
    """A `requests` session carrying the user's login session cookie."""
    django_client = Client()
    django_client.force_login(user)
    browser = requests.Session()
    browser.cookies.set("sessionid", django_client.cookies["sessionid"].value)
    return browser


def follow_to_app(browser, url, base, redirect_uri):
    """Follow redirects like a browser, approving on the consent page, until the app's URI."""
    for _ in range(10):
        if url.startswith(redirect_uri):
            return url
        response = browser.get(url, allow_redirects=False, timeout=30)
        if response.status_code in (301, 302, 303):
            url = urljoin(url, response.headers["Location"])
            continue
        assert response.status_code == 200, response.text
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)
        scopes = re.findall(r'name="scope" value="([^"]+)"', response.text)
        posted = browser.post(
            url,
            data={"csrfmiddlewaretoken": csrf, "scope": scopes, "approve": "1"},
            headers={"Referer": url},
            allow_redirects=False,
            timeout=30,
        )
        assert posted.status_code == 302, posted.text
        url = urljoin(url, posted.headers["Location"])
    raise AssertionError("never got back to the app")


@pytest.mark.parametrize("confidential", [False, True])
def test_fhirclient_completes_a_standalone_launch(
    live_base, patient_user, patient_record, confidential
):
    redirect_uri = live_base + "/app/callback"
    app, secret = make_app(
        "fhirclient app", confidential=confidential, scopes=SCOPE, redirect_uri=redirect_uri
    )
    settings = {
        "app_id": app.client_id,
        "api_base": live_base + "/fhir",
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
    }
    if secret:
        settings["app_secret"] = secret
    smart = fhir_client.FHIRClient(settings=settings)
    authorize_url = smart.authorize_url
    assert authorize_url.startswith(live_base + "/smart/authorize?")

    browser = browser_for(patient_user, live_base)
    try:
        callback = follow_to_app(browser, authorize_url, live_base, redirect_uri)
    finally:
        browser.close()
    try:
        check_launch(smart, callback, patient_record)
    finally:
        smart.server.session.close()


def check_launch(smart, callback, patient_record):
    smart.handle_callback(callback)

    assert smart.ready
    assert smart.patient_id == patient_record
    patient = smart.patient
    assert patient.id == patient_record
    assert patient.name[0].family == "Lovelace"
    assert smart.server.auth.refresh_token
    assert smart.reauthorize()
