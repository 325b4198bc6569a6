"""Fixtures and helpers for the SMART authorization server tests (tests/smart_auth, tests/flows).

Named for the things they give (`patient_user`, `clinician`, `public_app`); helpers drive the
real HTTP endpoints with Django's test client, the way an app and a browser would.
"""

import base64
import functools
import hashlib
import http.server
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.db import connection
from django.test import Client
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from oauth2_provider.models import get_application_model

from fhir_api import store
from smart_auth.keys import key_ring
from smart_auth.models import FhirUser
from smart_auth.serializers import clear_secret, set_new_secret
from smart_auth.tokens import default_token_signer

REDIRECT_URI = "https://app.example.org/callback"
SmartApp = get_application_model()


@pytest.fixture(autouse=True)
def fresh_key_ring():
    """Each test's database starts without keys; forget any key cached by an earlier test,
    and the tokens verified with them."""
    key_ring.clear()
    default_token_signer.verified.clear()
    yield
    key_ring.clear()
    default_token_signer.verified.clear()


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


def statements_of(captured):
    """(verb, first table) of each SQL statement a CaptureQueriesContext saw, leaving out the
    rate limiter's cache table (Redis in production)."""
    return [
        (query["sql"].split()[0], *re.findall(r'"(\w+)"', query["sql"])[:1])
        for query in captured.captured_queries
        if "django_cache" not in query["sql"]
    ]


def race(send, attempts=4):
    """Call `send()` (one HTTP request) from `attempts` threads released at the same moment:
    each answer's (status, JSON body). Each thread closes its own database connection."""
    barrier = threading.Barrier(attempts)
    results = []

    def run():
        try:
            barrier.wait()
            response = send()
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def fhir_get(path, token, client=None):
    client = client or Client()
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def body(response):
    return json.loads(response.content)


# --- Backend services and private_key_jwt (RFC 7523) ---------------------------------------

BACKEND_SCOPES = "system/*.rs system/Observation.rs"


@functools.cache
def signing_key(alg="RS384", name="app"):
    """A private key for `alg` (RSA 2048, or EC on the algorithm's curve), one per name.

    Generated once per test run: an RSA key takes tens of milliseconds to make."""
    if alg.startswith("RS") or alg.startswith("PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
    return ec.generate_private_key(curve)


def public_jwk(private_key, kid, **members):
    """The public JWK of `private_key` with `kid` (and any extra members, e.g. alg, use)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, **members}


def make_backend_app(
    name="Backend service",
    *,
    jwks=None,
    jwks_uri="",
    scopes=BACKEND_SCOPES,
    grant_types="client_credentials",
    redirect_uri="",
    **extra,
):
    """A confidential private_key_jwt app, created directly (the API has its own tests)."""
    app = SmartApp(
        name=name,
        client_type="confidential",
        authorization_grant_type=(
            "authorization-code" if "authorization_code" in grant_types else "client-credentials"
        ),
        grant_types=grant_types,
        token_endpoint_auth_method="private_key_jwt",
        redirect_uris=redirect_uri,
        scopes=scopes,
        jwks=jwks,
        jwks_uri=jwks_uri,
        **extra,
    )
    set_new_secret(app)  # a random secret nobody knows: the app has no usable secret
    app.save()
    return app


def sign_assertion(client_id, private_key, kid, alg="RS384", *, headers=None, **claims):
    """A client assertion as a backend service signs it; `claims` override (None drops one)."""
    from smart_auth.assertions import token_endpoint_url

    now = int(time.time())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint_url(),
        "exp": now + 240,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, private_key, algorithm=alg, headers={"kid": kid, **(headers or {})})


def backend_token_request(client, assertion, scope=BACKEND_SCOPES, **extra):
    """POST a client_credentials request with `assertion`, as SMART Backend Services does."""
    data = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        **extra,
    }
    data = {key: value for key, value in data.items() if value is not None}
    return client.post("/smart/token", data, headers={"Accept": "application/json"})


class JwksServer:
    """A JWKS URL on 127.0.0.1 (a thread running http.server), for fetch tests.

    `document`, `status`, `headers`, `delay`, `raw` (the body as is) and `send_length` say
    what the next requests get; `requests` counts them, `hosts` and `accepts` keep their Host
    and Accept headers. Use as a context manager.
    """

    def __init__(self, document=None, *, tls=None):
        self.tls = tls  # an ssl.SSLContext to serve https with
        self.document = document if document is not None else {"keys": []}
        self.status = 200
        self.headers = {"Content-Type": "application/json"}
        self.delay = 0.0
        self.raw = None
        self.send_length = True
        self.requests = 0
        self.hosts = []
        self.accepts = []
        self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/jwks.json"

    def __enter__(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests += 1
                owner.hosts.append(self.headers.get("Host"))
                owner.accepts.append(self.headers.get("Accept"))
                if owner.delay:
                    time.sleep(owner.delay)
                payload = owner.raw if owner.raw is not None else json.dumps(owner.document)
                payload = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(owner.status)
                    for name, value in owner.headers.items():
                        self.send_header(name, value)
                    if owner.send_length:
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@functools.cache
def server_signing_pem():
    """One RS256 server key for a whole test run (generating one per test costs ~1 s)."""
    from smart_auth.keys import generate_private_pem

    return generate_private_pem()


@pytest.fixture(autouse=True)
def configured_signing_key(settings):
    """The server signs with `server_signing_pem()`, as a deployment with
    SMART_SIGNING_KEY_PEM does. Autouse in the folders whose conftest imports it."""
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": server_signing_pem()}


def self_signed_tls(hostname, directory):
    """(server SSLContext, client SSLContext trusting it) for a certificate naming `hostname`."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client
