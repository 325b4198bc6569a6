"""Fixtures and helpers for the SMART authorization server tests (tests/smart_auth, tests/flows).

Named for the things they give (`patient_user`, `clinician`, `public_app`); helpers drive the
real HTTP endpoints with Django's test client, the way an app and a browser would.
"""

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.conf import settings
from django.test import Client
from oauth2_provider.models import get_application_model

from fhir_api import store
from smart_auth.keys import key_ring
from smart_auth.models import FhirUser
from smart_auth.serializers import clear_secret, set_new_secret

REDIRECT_URI = "https://app.example.org/callback"
SmartApp = get_application_model()


@pytest.fixture(autouse=True)
def fresh_key_ring():
    """Each test's database starts without keys; forget any key cached by an earlier test."""
    key_ring.clear()
    yield
    key_ring.clear()


@pytest.fixture
def patient_record(db):
    return create_patient("pat-1", "Ada", "Lovelace")


@pytest.fixture
def other_patient(db):
    return create_patient("pat-2", "Grace", "Hopper")


@pytest.fixture
def patient_user(django_user_model, patient_record):
    user = django_user_model.objects.create_user("ada", password="pw-ada-123")
    FhirUser.objects.create(user=user, resource_type="Patient", fhir_id=patient_record)
    return user


@pytest.fixture
def clinician(django_user_model, db):
    store.do_create(
        "Practitioner",
        {"resourceType": "Practitioner", "name": [{"family": "Osler", "given": ["William"]}]},
        fhir_id="prac-1",
    )
    user = django_user_model.objects.create_user("osler", password="pw-osler-123")
    FhirUser.objects.create(user=user, resource_type="Practitioner", fhir_id="prac-1")
    return user


@pytest.fixture
def admin_user(django_user_model, db):
    return django_user_model.objects.create_user(
        "admin", password="pw-admin-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def public_app(db):
    return make_app("Public app", confidential=False)[0]


@pytest.fixture
def confidential_app(db):
    return make_app("Confidential app", confidential=True)


def create_patient(fhir_id, given, family):
    store.do_create(
        "Patient",
        {
            "resourceType": "Patient",
            "name": [{"family": family, "given": [given]}],
            "birthDate": "1990-01-01",
        },
        fhir_id=fhir_id,
    )
    return fhir_id


DEFAULT_SCOPES = (
    "launch/patient openid fhirUser profile offline_access online_access "
    "patient/*.read patient/*.rs user/*.read"
)


def make_app(name, *, confidential, scopes=DEFAULT_SCOPES, redirect_uri=REDIRECT_URI, **extra):
    """(app, secret or None), created directly (the API has its own tests)."""
    app = SmartApp(
        name=name,
        client_type="confidential" if confidential else "public",
        authorization_grant_type="authorization-code",
        redirect_uris=redirect_uri,
        scopes=scopes,
        **extra,
    )
    secret = set_new_secret(app) if confidential else clear_secret(app)
    app.save()
    return app, secret


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def query_of(url):
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class Launch:
    """One authorization request as an app makes it."""

    app: SmartApp
    scope: str
    verifier: str
    challenge: str
    state: str = "state-123"
    redirect_uri: str = REDIRECT_URI
    aud: str | None = None
    method: str = "S256"
    extra: dict | None = None

    @classmethod
    def new(cls, app, scope, **kwargs):
        verifier, challenge = pkce_pair()
        return cls(app=app, scope=scope, verifier=verifier, challenge=challenge, **kwargs)

    def params(self):
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "aud": self.aud if self.aud is not None else settings.FHIR_BASE_URL,
            "code_challenge": self.challenge,
            "code_challenge_method": self.method,
        }
        params.update(self.extra or {})
        return {key: value for key, value in params.items() if value is not None}


def start(browser, launch, *, post=False):
    """The app sends the browser to /smart/authorize; returns the response."""
    if post:
        return browser.post("/smart/authorize", launch.params())
    return browser.get("/smart/authorize", launch.params())


def authorize(browser, launch, *, approve=None, patient=None, post=False):
    """Run the browser part of a launch (user already logged in) and return the final
    redirect URL to the app. `approve` is the subset of scopes to tick (default: all)."""
    response = start(browser, launch, post=post)
    assert response.status_code == 302, response.content
    location = response["Location"]
    if not location.startswith("/smart/authorize/"):
        return location
    consent = browser.get(location)
    if consent.status_code == 302:
        return consent["Location"]  # remembered approval
    assert consent.status_code == 200, consent.content
    ticked = approve if approve is not None else consent.context["summary"].scopes
    ticked = [c.scope if hasattr(c, "scope") else c for c in ticked]
    response = browser.post(location, {"scope": ticked, "approve": "1"})
    assert response.status_code == 302, response.content
    if response["Location"].endswith("/patient"):
        picker = response["Location"]
        assert browser.get(picker).status_code == 200
        response = browser.post(picker, {"patient": patient or ""})
        assert response.status_code == 302, response.content
    return response["Location"]


def code_from(url, launch=None):
    params = query_of(url)
    assert "code" in params, url
    if launch is not None:
        assert params["state"] == launch.state
    return params["code"]


def logged_in(user):
    browser = Client()
    browser.force_login(user)
    return browser


def exchange(app_client, launch, code, *, secret=None, auth="basic", **overrides):
    """POST the code to /smart/token as the app would."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": launch.redirect_uri,
        "code_verifier": launch.verifier,
    }
    return token_request(app_client, launch.app, data, secret=secret, auth=auth, **overrides)


def refresh(app_client, app, refresh_token, *, secret=None, auth="basic", **overrides):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(app_client, app, data, secret=secret, auth=auth, **overrides)


def token_request(app_client, app, data, *, secret=None, auth="basic", **overrides):
    data = {**data, **overrides}
    data = {key: value for key, value in data.items() if value is not None}
    headers = {}
    if secret is not None and auth == "basic":
        basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    elif secret is not None and auth == "post":
        data.update(client_id=app.client_id, client_secret=secret)
    else:
        data.setdefault("client_id", app.client_id)
    return app_client.post("/smart/token", data, headers=headers)


def full_launch(user, app, scope, *, secret=None, approve=None, patient=None):
    """Authorize as `user` and exchange the code: (launch, token response JSON)."""
    launch = Launch.new(app, scope)
    url = authorize(logged_in(user), launch, approve=approve, patient=patient)
    response = exchange(Client(), launch, code_from(url, launch), secret=secret)
    assert response.status_code == 200, response.content
    return launch, response.json()


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def fhir_get(path, token, client=None):
    client = client or Client()
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def body(response):
    return json.loads(response.content)
