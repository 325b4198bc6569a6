"""Two servers behind one public name, sharing PostgreSQL and Redis, behave as one server.

A person's session, a pending authorization request, a code, a refresh token, a revocation,
a client assertion's jti and a client's rate budget made on one host are all seen by the other
(nothing a second host needs lives in one process's memory)."""

import secrets
import time
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.multihost.cluster import DEMO_PASSWORD
from tests.multihost.web import (
    PUBLIC_BASE_URL,
    Browser,
    basic_auth,
    bearer,
    path_of,
    query_of,
)
from tests.smart_support import pkce_pair

pytestmark = pytest.mark.postgres

REDIRECT_URI = "https://app.example.org/callback"
SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"
TOKEN_URL = PUBLIC_BASE_URL + "/smart/token"


# --- What the admin, the person and the app do, each step on a named host ------------------


def admin_token(host):
    response = host.post("/auth/token", json_body={"username": "admin", "password": DEMO_PASSWORD})
    assert response.status == 200, response.text
    return response.json()["access_token"]


def register(host, token, **app):
    response = host.post("/smart/apps", json_body=app, headers=bearer(token))
    assert response.status == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def app(cluster):
    """A confidential app, registered through host B with an admin token from host A."""
    a, b = cluster.hosts
    return register(
        b,
        admin_token(a),
        name="Two Host App",
        redirectUris=[REDIRECT_URI],
        scopes=SCOPES.split(),
        isConfidential=True,
    )


def sign_in(browser, page_host, post_host, username="patient"):
    """Load the sign-in page from one host and post it to another."""
    page = browser.get(page_host, "/smart/login")
    assert page.status == 200, page.text
    form = {"username": username, "password": DEMO_PASSWORD}
    done = browser.submit(post_host, "/smart/login", form, page)
    assert done.status == 302, done.text
    return done


def authorize(browser, start_host, consent_host, decide_host, app):
    """An authorization request sent to one host, its consent page shown by a second and the
    decision posted to a third. Returns (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": app["clientId"],
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "state": "st-" + secrets.token_hex(4),
        "aud": PUBLIC_BASE_URL + "/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    started = browser.get(start_host, "/smart/authorize?" + urlencode(query))
    assert started.status == 302, started.text
    consent = browser.get(consent_host, path_of(started.location))
    if consent.status == 302:  # approved before: not asked again
        back = consent.location
    else:
        assert consent.status == 200, consent.text
        form = {"scope": SCOPES.split(), "approve": "1"}
        decided = browser.submit(decide_host, path_of(started.location), form, consent)
        assert decided.status == 302, decided.text
        back = decided.location
    assert back.startswith(REDIRECT_URI), back
    params = query_of(back)
    assert params["state"] == query["state"]
    return params["code"], verifier


def exchange(host, app, code, verifier):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    return host.post(
        "/smart/token", form=form, headers=basic_auth(app["clientId"], app["clientSecret"])
    )


def refresh(host, app, refresh_token):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return host.post(
        "/smart/token", form=form, headers=basic_auth(app["clientId"], app["clientSecret"])
    )


def read_patient(host, token):
    claims = jwt.decode(token, options={"verify_signature": False})
    return host.get(f"/fhir/Patient/{claims['patient']}", headers=bearer(token))


# --- The tests --------------------------------------------------------------------------------


def test_both_hosts_publish_the_same_signing_keys_and_discovery(hosts):
    a, b = hosts
    assert a.get("/.well-known/jwks.json").json() == b.get("/.well-known/jwks.json").json()
    config = a.get("/.well-known/smart-configuration").json()
    assert config == b.get("/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == TOKEN_URL


def test_a_session_started_on_one_host_is_known_to_the_other_until_signed_out(hosts):
    a, b = hosts
    browser = Browser()
    sign_in(browser, a, b)
    page = browser.get(a, "/smart/manage")
    assert page.status == 200
    assert "Signed in as <strong>patient</strong>" in page.text
    signed_out = browser.submit(b, "/smart/logout", {}, page)
    assert signed_out.status == 302
    assert browser.get(a, "/smart/manage").status == 302  # to the sign-in page


def test_authorize_on_one_host_exchange_on_the_other_refresh_and_revoke_across(hosts, app):
    a, b = hosts
    browser = Browser()
    sign_in(browser, b, a)
    code, verifier = authorize(browser, a, b, a, app)

    issued = exchange(b, app, code, verifier)
    assert issued.status == 200, issued.text
    tokens = issued.json()
    assert read_patient(a, tokens["access_token"]).status == 200

    refreshed = refresh(a, app, tokens["refresh_token"])
    assert refreshed.status == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert read_patient(b, renewed["access_token"]).status == 200

    revoked = b.post(
        "/smart/revoke",
        form={"token": renewed["access_token"]},
        headers=basic_auth(app["clientId"], app["clientSecret"]),
    )
    assert revoked.status == 200, revoked.text
    refused = read_patient(a, renewed["access_token"])
    assert refused.status == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]

    # The approval is remembered for both hosts: the next request is not asked again.
    code, verifier = authorize(browser, b, a, b, app)
    assert exchange(a, app, code, verifier).status == 200


def test_a_code_redeemed_on_one_host_is_refused_on_the_other(hosts, app):
    a, b = hosts
    browser = Browser()
    sign_in(browser, a, a)
    code, verifier = authorize(browser, a, a, a, app)
    first = exchange(a, app, code, verifier)
    assert first.status == 200, first.text

    replay = exchange(b, app, code, verifier)
    assert replay.status == 400
    assert replay.json()["error"] == "invalid_grant"
    # A used code coming back revokes what it gave (RFC 6749 §4.1.2), on every host.
    assert read_patient(a, first.json()["access_token"]).status == 401
    assert read_patient(b, first.json()["access_token"]).status == 401


def test_a_replayed_refresh_token_is_refused_on_the_other_host(hosts, app):
    a, b = hosts
    browser = Browser()
    sign_in(browser, a, b)
    code, verifier = authorize(browser, b, b, b, app)
    tokens = exchange(a, app, code, verifier).json()
    assert refresh(a, app, tokens["refresh_token"]).status == 200
    replay = refresh(b, app, tokens["refresh_token"])
    assert replay.status == 400
    assert replay.json()["error"] == "invalid_grant"


# --- Backend services: client assertions and rate limits ------------------------------------


@pytest.fixture(scope="module")
def backend(cluster):
    """A private_key_jwt backend service with its RSA key: (client id, private key, kid)."""
    a, b = cluster.hosts
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="multihost-1", alg="RS384", use="sig")
    registered = register(
        a,
        admin_token(b),
        name="Two Host Backend",
        scopes=["system/Patient.rs"],
        isConfidential=True,
        grantTypes=["client_credentials"],
        tokenEndpointAuthMethod="private_key_jwt",
        jwks={"keys": [jwk]},
    )
    return registered["clientId"], key, "multihost-1"


def assertion(client_id, key, kid):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "iat": now,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, key, algorithm="RS384", headers={"kid": kid})


def backend_token(host, client_id, signed):
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    return host.post("/smart/token", form=form)


def test_a_client_assertion_used_on_one_host_is_refused_on_the_other(hosts, backend):
    a, b = hosts
    client_id, key, kid = backend
    signed = assertion(client_id, key, kid)
    first = backend_token(a, client_id, signed)
    assert first.status == 200, first.text
    assert b.get("/fhir/Patient", headers=bearer(first.json()["access_token"])).status == 200

    replay = backend_token(b, client_id, signed)
    assert replay.status == 401, replay.text
    assert replay.json()["error"] == "invalid_client"
    assert "jti" in replay.json()["error_description"]
    assert backend_token(b, client_id, assertion(client_id, key, kid)).status == 200


def test_a_clients_token_rate_limit_holds_across_hosts(cluster, hosts):
    a, b = hosts
    limited = register(
        b,
        admin_token(a),
        name="Rate Limited Backend",
        scopes=["system/Patient.rs"],
        isConfidential=True,
        grantTypes=["client_credentials"],
    )
    # The per-app limit is set in admin; set before the app's first request, so no host has
    # cached the default for it.
    cluster.sql(
        "UPDATE smart_auth_smartapp SET token_rate_limit = %s WHERE client_id = %s",
        ("3/day", limited["clientId"]),
    )
    auth = basic_auth(limited["clientId"], limited["clientSecret"])
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    statuses = [host.post("/smart/token", form=form, headers=auth) for host in (a, b, a, b, a)]
    assert [r.status for r in statuses] == [200, 200, 200, 429, 429], [r.text for r in statuses]
    assert int(statuses[3].headers["Retry-After"]) > 0
    assert statuses[3].json()["error"] == "slow_down"
