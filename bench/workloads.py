"""The workloads: what each sends, prepared fresh before every run.

`prepare(ctx, count)` returns the wrk script, its arguments, and one request to probe with
first; `count` is how many single-use items (assertions, codes) one run may consume.
"""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson

from bench import fixtures
from bench.loadgen import line, write_lines

FORM = ("Content-Type", "application/x-www-form-urlencoded")
FHIR_JSON = ("Accept", "application/fhir+json")
SEARCH_PATIENTS = 50  # distinct patient-scoped tokens per search run


@dataclass
class Context:
    """What the workloads share: where to write, the apps, and what to ask for."""

    folder: Path
    connections: int
    threads: int
    secret_app: fixtures.App
    jwt_app: fixtures.App
    assertion_key: object
    token_url: str
    patient_template: fixtures.Template
    user_template: fixtures.Template
    reads: list
    searches: list
    bundles: list
    peer: fixtures.App | None = None


@dataclass
class Prepared:
    script: str
    args: list
    probe: str | None
    resources_per_request: int = 0


@dataclass
class Workload:
    name: str
    label: str
    server: str  # product, bare or peer
    prepare: object
    baseline: str | None = None  # the workload whose requests/s the ratio divides by
    single_use: bool = False


def _file(ctx, name, lines):
    return write_lines(ctx.folder / f"{name}.txt", lines)


def _requests(ctx, name, lines, **extra):
    """requests.lua over `lines`, probing with the first (which a single-use workload made
    in excess, so the probe spends none of the run's)."""
    probe, rest = lines[0], lines[1:] or lines
    path = _file(ctx, name, rest)
    return Prepared("requests.lua", [path, ctx.threads], probe, **extra)


def client_credentials_secret(ctx, count):
    body = urlencode({"grant_type": "client_credentials", "scope": fixtures.SYSTEM_SCOPE})
    request = line("POST", "/smart/token", body, [FORM, ("Authorization", ctx.secret_app.basic)])
    return _requests(ctx, "token_secret", [request])


def client_credentials_jwt(ctx, count):
    assertions = fixtures.sign_assertions(
        ctx.assertion_key, ctx.jwt_app.client_id, ctx.token_url, count + 1
    )
    lines = [
        line(
            "POST",
            "/smart/token",
            urlencode(
                {
                    "grant_type": "client_credentials",
                    "scope": fixtures.SYSTEM_SCOPE,
                    "client_assertion_type": fixtures.ASSERTION_TYPE,
                    "client_assertion": assertion,
                }
            ),
            [FORM],
        )
        for assertion in assertions
    ]
    return _requests(ctx, "token_jwt", lines)


def code_exchange(ctx, count):
    pairs = fixtures.clone_codes(ctx.patient_template, count + 1)
    basic = ("Authorization", ctx.secret_app.basic)
    lines = [
        line("POST", "/smart/token", fixtures.exchange_body(code, verifier), [FORM, basic])
        for code, verifier in pairs
    ]
    return _requests(ctx, "token_code", lines)


def refresh(ctx, count):
    """Chains of rotating refresh tokens, a few per connection, each started by a real code
    exchange; the probe spends one more."""
    seeds = ctx.connections * 4 + 1
    responses = fixtures.exchange_codes(
        ctx.secret_app, fixtures.clone_codes(ctx.patient_template, seeds)
    )
    tokens = [response["refresh_token"] for response in responses]
    body = urlencode({"grant_type": "refresh_token", "refresh_token": tokens[0]})
    probe = line("POST", "/smart/token", body, [FORM, ("Authorization", ctx.secret_app.basic)])
    path = _file(ctx, "token_refresh", tokens[1:])
    return Prepared("refresh.lua", [path, ctx.threads, ctx.secret_app.basic], probe)


def _bearer(token):
    return ("Authorization", f"Bearer {token}")


def _user_token(ctx):
    pairs = fixtures.clone_codes(ctx.user_template, 1)
    return fixtures.exchange_codes(ctx.secret_app, pairs)[0]["access_token"]


def fhir_read(ctx, count):
    bearer = _bearer(_user_token(ctx))
    lines = [line("GET", f"/fhir/{kind}/{id_}", "", [bearer, FHIR_JSON]) for kind, id_ in ctx.reads]
    return _requests(ctx, "fhir_read", lines)


def _search_path(patient, system, code):
    return f"/fhir/Observation?patient={patient}&code={quote(f'{system}|{code}', safe='')}"


def search_patient_token(ctx, count):
    """Each search carries a `patient/*.rs` token whose patient is the one searched."""
    patients = list(dict.fromkeys(patient for patient, _, _ in ctx.searches))[:SEARCH_PATIENTS]
    pairs = fixtures.clone_codes(ctx.patient_template, len(patients), patients=patients)
    responses = fixtures.exchange_codes(ctx.secret_app, pairs)
    tokens = {response["patient"]: response["access_token"] for response in responses}
    lines = [
        line("GET", _search_path(*search), "", [_bearer(tokens[search[0]]), FHIR_JSON])
        for search in ctx.searches
        if search[0] in tokens
    ]
    return _requests(ctx, "search_patient", lines)


def search_user_token(ctx, count):
    bearer = _bearer(_user_token(ctx))
    lines = [line("GET", _search_path(*search), "", [bearer, FHIR_JSON]) for search in ctx.searches]
    return _requests(ctx, "search_user", lines)


def transaction(ctx, count):
    bearer = _bearer(_user_token(ctx))
    content = ("Content-Type", "application/fhir+json")
    lines = [line("POST", "/fhir", body, [bearer, content, FHIR_JSON]) for body in ctx.bundles]
    entries = len(orjson.loads(ctx.bundles[0])["entry"])
    return _requests(ctx, "transaction", lines, resources_per_request=entries)


def bare_view(ctx, count):
    return _requests(ctx, "bare", [line("GET", "/")])


def peer_client_credentials(ctx, count):
    body = urlencode({"grant_type": "client_credentials", "scope": fixtures.SYSTEM_SCOPE})
    request = line("POST", "/token", body, [FORM, ("Authorization", ctx.peer.basic)])
    return _requests(ctx, "peer_cc", [request])


PEER = "peer_cc"
BARE = "bare"
WORKLOADS = [
    Workload(
        "token_secret",
        "Token: client_credentials, client_secret_basic",
        "product",
        client_credentials_secret,
        baseline=PEER,
    ),
    Workload(
        "token_jwt",
        "Token: client_credentials, private_key_jwt (ES384)",
        "product",
        client_credentials_jwt,
        baseline=PEER,
        single_use=True,
    ),
    Workload(
        "token_refresh",
        "Token: refresh_token (rotating, id_token)",
        "product",
        refresh,
        baseline=PEER,
    ),
    Workload(
        "token_code",
        "Token: authorization_code exchange (PKCE, id_token, refresh)",
        "product",
        code_exchange,
        baseline=PEER,
        single_use=True,
    ),
    Workload(
        PEER,
        "node-oidc-provider 9.13: client_credentials, client_secret_basic",
        "peer",
        peer_client_credentials,
    ),
    Workload("fhir_read", "FHIR read by id (user token)", "product", fhir_read, baseline=BARE),
    Workload(
        "search_patient",
        "Observation?patient&code, patient token",
        "product",
        search_patient_token,
        baseline=BARE,
    ),
    Workload(
        "search_user",
        "Observation?patient&code, user token",
        "product",
        search_user_token,
        baseline=BARE,
    ),
    Workload(BARE, "Bare Django JSON view (ceiling)", "bare", bare_view),
]
WRITES = [
    Workload(
        "transaction",
        "Transaction Bundle write (user token)",
        "product",
        transaction,
    ),
]
BY_NAME = {workload.name: workload for workload in WORKLOADS + WRITES}
