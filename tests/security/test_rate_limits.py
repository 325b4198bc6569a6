"""Per-client rate limits on /smart/token and the FHIR API: 429 with Retry-After, shared by
every process, per-app overrides, and strangers who cannot spend a real app's budget."""

import base64

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from smart_auth import ratelimit
from tests.smart_support import fhir_get, full_launch, make_app, refresh

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient patient/*.rs offline_access"
# Thirty seconds into a one-minute window: every request of a test falls in the same window.
NOW = 1_800_000_030.0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(ratelimit, "clock", lambda: clock["now"])
    return clock


def new_process():
    """What a request served by another worker or host sees: no local leases at all."""
    ratelimit.clear_local_state()


def bad_code(app, address="198.51.100.7"):
    """A token request naming `app` with a code that does not exist (400 invalid_grant)."""
    data = {
        "grant_type": "authorization_code",
        "code": "no-such-code",
        "redirect_uri": "https://app.example.org/callback",
        "code_verifier": "v" * 50,
        "client_id": app.client_id,
    }
    return Client(REMOTE_ADDR=address).post("/smart/token", data)


def assert_slow_down(response, retry_after=30):
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == str(retry_after)
    assert response.json()["error"] == "slow_down"
    assert response["Cache-Control"] == "no-store"


# --- Token endpoint ------------------------------------------------------------------------


def test_an_app_over_its_token_limit_gets_429_with_retry_after(limits, patient_user, public_app):
    limits(TOKEN_RATE_LIMIT="2/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)  # the first token request
    second = refresh(Client(), public_app, token["refresh_token"])
    assert second.status_code == 200
    third = refresh(Client(), public_app, second.json()["refresh_token"])
    assert_slow_down(third)
    assert "client" in third.json()["error_description"]


def test_the_limit_holds_across_processes(limits, patient_user, public_app):
    limits(TOKEN_RATE_LIMIT="2/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    new_process()
    second = refresh(Client(), public_app, token["refresh_token"])
    assert second.status_code == 200
    new_process()
    assert_slow_down(refresh(Client(), public_app, second.json()["refresh_token"]))


def test_the_next_window_opens_the_budget_again(limits, patient_user, public_app, frozen_clock):
    limits(TOKEN_RATE_LIMIT="1/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert_slow_down(refresh(Client(), public_app, token["refresh_token"]))
    frozen_clock["now"] = NOW + 30
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200


def test_a_stranger_naming_an_app_does_not_spend_its_budget(limits, patient_user, public_app):
    limits(TOKEN_RATE_LIMIT="2/min", TOKEN_ADDRESS_RATE_LIMIT="100/min")
    for _ in range(20):
        assert bad_code(public_app).status_code == 400
    new_process()  # the stranger's requests reached every worker
    for _ in range(20):
        assert bad_code(public_app, address="198.51.100.8").status_code == 400
    new_process()
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200


def test_failed_token_requests_are_limited_per_address(limits, public_app):
    limits(TOKEN_ADDRESS_RATE_LIMIT="5/min")
    for _ in range(5):
        assert bad_code(public_app).status_code == 400
    refused = bad_code(public_app)
    assert_slow_down(refused)
    assert "address" in refused.json()["error_description"]
    # Another address is not affected, nor is a request that names no client at all.
    assert bad_code(public_app, address="198.51.100.99").status_code == 400
    nameless = Client(REMOTE_ADDR="198.51.100.7").post("/smart/token", {"grant_type": "x"})
    assert nameless.status_code == 429


def test_requests_naming_no_client_count_against_the_address(limits):
    limits(TOKEN_ADDRESS_RATE_LIMIT="3/min")
    stranger = Client(REMOTE_ADDR="203.0.113.50")
    statuses = [stranger.post("/smart/token", {}).status_code for _ in range(4)]
    assert statuses[:3] == [400, 400, 400] and statuses[3] == 429


def test_a_client_id_with_a_nul_byte_names_no_app(limits):
    """PostgreSQL cannot compare a NUL byte: the limits must not look such an id up."""
    limits(TOKEN_ADDRESS_RATE_LIMIT="3/min")
    credentials = base64.b64encode(b"app\x00:secret").decode()
    response = Client(REMOTE_ADDR="203.0.113.51").post(
        "/smart/token",
        {"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert ratelimit.get_app_rates("app\x00") == {}


def test_successes_do_not_count_against_the_address(limits, patient_user):
    limits(TOKEN_ADDRESS_RATE_LIMIT="1/min")
    for number in range(3):  # three apps, three successful code exchanges from 127.0.0.1
        app = make_app(f"App {number}", confidential=False)[0]
        full_launch(patient_user, app, SCOPES)


def test_an_apps_own_token_limit_overrides_the_default(limits, patient_user, public_app):
    limits(TOKEN_RATE_LIMIT="100/min")
    public_app.token_rate_limit = "1/min"
    public_app.save()
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert_slow_down(refresh(Client(), public_app, token["refresh_token"]))


def test_raising_an_apps_limit_takes_effect_without_waiting_for_the_window(
    limits, patient_user, public_app, frozen_clock
):
    limits(TOKEN_RATE_LIMIT="1/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert_slow_down(refresh(Client(), public_app, token["refresh_token"]))
    public_app.token_rate_limit = "10/min"
    public_app.save()  # clears the cached limits of the app, for every process
    frozen_clock["now"] = NOW + ratelimit.RECHECK_SECONDS + 1
    assert refresh(Client(), public_app, token["refresh_token"]).status_code == 200


def test_a_429_from_the_token_endpoint_can_be_read_by_a_browser_app(limits, public_app):
    limits(TOKEN_ADDRESS_RATE_LIMIT="1/min")
    bad_code(public_app)
    data = {"grant_type": "authorization_code", "client_id": public_app.client_id}
    refused = Client(REMOTE_ADDR="198.51.100.7").post(
        "/smart/token", data, headers={"Origin": "https://app.example.org"}
    )
    assert refused.status_code == 429
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in refused["Access-Control-Expose-Headers"]


# --- FHIR API ------------------------------------------------------------------------------


def test_an_app_over_its_api_limit_gets_a_throttled_operation_outcome(
    limits, patient_user, public_app
):
    limits(API_RATE_LIMIT="3/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    for _ in range(3):
        assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    refused = fhir_get("/fhir/Patient/pat-1", token["access_token"])
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "throttled"


def test_the_api_limit_belongs_to_the_app_not_the_token(limits, patient_user, public_app):
    limits(API_RATE_LIMIT="2/min")
    _launch, first = full_launch(patient_user, public_app, SCOPES)
    _launch, second = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", first["access_token"]).status_code == 200
    new_process()
    assert fhir_get("/fhir/Patient/pat-1", second["access_token"]).status_code == 200
    new_process()
    assert fhir_get("/fhir/Patient/pat-1", second["access_token"]).status_code == 429
    # Another app has its own budget.
    other = make_app("Other app", confidential=False)[0]
    _launch, theirs = full_launch(patient_user, other, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", theirs["access_token"]).status_code == 200


def test_an_apps_own_api_limit_overrides_the_default(limits, patient_user, public_app):
    limits(API_RATE_LIMIT="1/min")
    public_app.api_rate_limit = "3/min"
    public_app.save()
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    statuses = [fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code for _ in "abcd"]
    assert statuses == [200, 200, 200, 429]


def test_staff_sessions_are_not_limited(limits, fhir):
    limits(API_RATE_LIMIT="1/min")
    assert [fhir.get("/fhir/Patient").status_code for _ in "abc"] == [200, 200, 200]


def test_a_lease_spares_the_cache_and_the_database(limits, patient_user, public_app):
    """With a default limit, a process counts most requests locally: no cache round trip,
    and the app's own limit is not read again."""
    limits(API_RATE_LIMIT="6000/min")
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "django_cache" not in sql
    assert "api_rate_limit" not in sql
