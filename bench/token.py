"""Token endpoint benchmark: confidential code exchange and refresh, requests per second.

    python bench/token.py [--requests 300] [--database-url postgres://user@host/db]

Runs against a fresh, separate database (a temporary SQLite file, or a scratch PostgreSQL
database created next to the one named and dropped at the end), with config.settings
otherwise. Codes are obtained beforehand through the real /smart/authorize flow (not timed);
then POST /smart/token is timed through Django's test Client with client_secret_basic, so the
figures include routing, django-oauth-toolkit, the secret check, JWT signing (access and
id_token) and the database writes, but no network. Prints a markdown table; nothing is asserted.
"""

import os
import sys

# Run as a script, this file's folder comes first on sys.path and this module would shadow the
# standard library's `token` (imported by tokenize, inspect, logging...). Drop the folder, and
# put the project root there instead, before anything else is imported.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE)] + [
    entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE
]

import argparse  # noqa: E402
import base64  # noqa: E402
import hashlib  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

REDIRECT_URI = "https://bench.example.org/callback"
SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"

from bench.harness import run_in_scratch_database  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="sqlite://", help="sqlite:// or postgres://...")
    args = parser.parse_args()
    run_in_scratch_database(args.database_url, "token_bench", run, args)


def run(args):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from fhir_api import store
    from smart_auth.models import FhirUser
    from smart_auth.serializers import set_new_secret

    call_command("migrate", verbosity=0)
    store.do_create(
        "Patient",
        {"resourceType": "Patient", "name": [{"family": "Bench", "given": ["Ada"]}]},
        fhir_id="bench-patient",
    )
    user = get_user_model().objects.create_user("bench", password=secrets.token_urlsafe())
    FhirUser.objects.create(user=user, resource_type="Patient", fhir_id="bench-patient")
    app = make_app(set_new_secret)
    secret = app.plaintext_secret
    basic = "Basic " + base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()

    browser = Client()
    browser.force_login(user)
    print(f"Getting {args.requests} codes through /smart/authorize (not timed)...", flush=True)
    codes = [authorize(browser, app, settings.FHIR_BASE_URL) for _ in range(args.requests)]

    token_client = Client()
    exchange_times, refresh_tokens = [], []
    for code, verifier in codes:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        started = time.perf_counter()
        response = token_client.post("/smart/token", data, headers={"Authorization": basic})
        exchange_times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
        refresh_tokens.append(response.json()["refresh_token"])

    refresh_times = []
    for refresh_token in refresh_tokens:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        started = time.perf_counter()
        response = token_client.post("/smart/token", data, headers={"Authorization": basic})
        refresh_times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content

    print()
    print(f"Database: {connection.vendor}; {args.requests} requests each; one process, no network.")
    print()
    print("| request | req/s | mean ms | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    report("code exchange (confidential, Basic, PKCE, id_token)", exchange_times)
    report("refresh (confidential, Basic, rotation)", refresh_times)
    print()
    secret_check_figures(secret, app.client_secret)


def make_app(set_new_secret):
    from oauth2_provider.models import get_application_model

    app = get_application_model()(
        name="Bench app",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
        scopes=SCOPE,
    )
    plaintext = set_new_secret(app)
    app.save()
    app.plaintext_secret = plaintext
    return app


def authorize(browser, app, aud):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "bench",
        "aud": aud,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    consent_url = browser.get("/smart/authorize", params)["Location"]
    response = browser.get(consent_url)
    if response.status_code == 200:  # first time: approve every scope (remembered afterwards)
        response = browser.post(consent_url, {"scope": SCOPE.split(), "approve": "1"})
    query = parse_qs(urlsplit(response["Location"]).query)
    return query["code"][0], verifier


def report(label, seconds):
    ordered = sorted(seconds)
    mean = statistics.fmean(ordered)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"| {label} | {1 / mean:,.0f} | {mean * 1000:.2f} | {p50 * 1000:.2f} | {p95 * 1000:.2f} |"
    )


def secret_check_figures(secret, stored):
    """Why the client-secret hasher matters: one check, ours against Django's PBKDF2."""
    from django.contrib.auth.hashers import check_password, make_password

    pbkdf2 = make_password(secret)
    for label, encoded in (
        ("smart_client_sha256 (ours)", stored),
        ("PBKDF2 (Django default)", pbkdf2),
    ):
        started = time.perf_counter()
        check_password(secret, encoded)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"One client-secret check with {label}: {elapsed:.2f} ms")


if __name__ == "__main__":
    main()
