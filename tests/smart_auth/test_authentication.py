"""The FHIR API accepts SMART access tokens: signature, exp, aud and revocation are checked;
anything else is a 401 with a Bearer challenge and an OperationOutcome."""

import time

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from fhir_api.policy import AccessPolicy
from smart_auth import keys
from smart_auth.authentication import SmartBearerAuthentication
from smart_auth.grants import do_revoke_app_tokens
from smart_auth.tokens import InvalidToken, VerifiedTokens, default_token_signer
from tests.smart_support import claims_of, fhir_get, full_launch

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"


def assert_unauthorized(response, *, invalid_token=True):
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    if invalid_token:
        assert 'error="invalid_token"' in challenge
    assert response.json()["resourceType"] == "OperationOutcome"


def resign(claims):
    key = keys.get_signing_key()
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def test_no_token_is_401_with_a_bearer_challenge(patient_record):
    response = Client().get(f"/fhir/Patient/{patient_record}")
    assert_unauthorized(response, invalid_token=False)


def test_garbage_token_is_401(patient_record):
    assert_unauthorized(fhir_get(f"/fhir/Patient/{patient_record}", "not-a-jwt"))


def test_a_valid_token_reads_the_patient_and_the_fhir_user(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = fhir_get(f"/fhir/Patient/{token['patient']}", token["access_token"])
    assert response.status_code == 200
    fhir_user = claims_of(token["id_token"])["fhirUser"].removeprefix(settings.FHIR_BASE_URL)
    assert fhir_get(f"/fhir{fhir_user}", token["access_token"]).status_code == 200


def test_an_expired_token_is_401(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    claims = claims_of(token["access_token"])
    claims.update(iat=int(time.time()) - 2000, exp=int(time.time()) - 100)
    assert_unauthorized(fhir_get("/fhir/Patient/pat-1", resign(claims)))


def test_a_token_for_another_audience_is_401(patient_user, public_app):
    """Seed 002 troubleshooting: "FHIR API returns 401 — aud claim doesn't match"."""
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    claims = claims_of(token["access_token"])
    claims["aud"] = "https://other-ehr.example.org/fhir"
    response = fhir_get("/fhir/Patient/pat-1", resign(claims))
    assert_unauthorized(response)
    assert "not meant for this server" in response["WWW-Authenticate"]


def test_a_well_signed_token_the_server_never_issued_is_401(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    claims = claims_of(token["access_token"])
    claims["jti"] = "forged"
    claims["patient"] = "pat-2"
    assert_unauthorized(fhir_get("/fhir/Patient/pat-1", resign(claims)))


def test_a_token_signed_by_another_key_is_401(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    claims = claims_of(token["access_token"])
    forged = jwt.encode(
        claims,
        keys.generate_private_pem(),
        algorithm="RS256",
        headers={"kid": keys.get_signing_key().kid},
    )
    assert_unauthorized(fhir_get("/fhir/Patient/pat-1", forged))


def test_an_admin_jwt_is_not_accepted_by_the_fhir_api(admin_user, patient_record):
    token, _ = default_token_signer.make_admin_token(admin_user)
    assert_unauthorized(fhir_get(f"/fhir/Patient/{patient_record}", token))


def test_a_token_in_the_query_string_is_not_accepted(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    response = Client().get("/fhir/Patient/pat-1", {"access_token": token["access_token"]})
    assert response.status_code == 401


def test_the_policy_carries_scopes_patient_fhir_user_and_client(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    request = APIRequestFactory().get(
        "/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}"
    )
    user, policy = SmartBearerAuthentication().authenticate(request)
    assert user == patient_user
    assert isinstance(policy, AccessPolicy)
    assert policy.scopes == tuple(token["scope"].split())
    assert policy.patient == "pat-1"
    assert policy.fhir_user == "Patient/pat-1"
    assert policy.client_id == public_app.client_id


def test_the_bearer_check_is_one_query_and_the_user_loads_the_rest_on_use(patient_user, public_app):
    """Only id, username and is_active come with the check; any other field is one more
    query, the first time it is read. (Not counted: the signing-key reads that a key
    created inside the test's own transaction causes.)"""
    patient_user.email = "ada@example.org"
    patient_user.save()
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    request = APIRequestFactory().get(
        "/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}"
    )

    def statements(context):
        return [q["sql"] for q in context if "smart_auth_signingkey" not in q["sql"]]

    with CaptureQueriesContext(connection) as check:
        user, _policy = SmartBearerAuthentication().authenticate(request)
        assert (user.pk, user.get_username(), user.is_active) == (patient_user.pk, "ada", True)
    assert len(statements(check)) == 1
    with CaptureQueriesContext(connection) as later:
        assert user.email == "ada@example.org"
    assert len(statements(later)) == 1


def test_a_revoked_or_inactive_credential_fails_the_check(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    public_app.is_active = False
    public_app.save()
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401
    public_app.is_active = True
    public_app.save()
    patient_user.is_active = False
    patient_user.save()
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401


def test_staff_sessions_still_use_the_fhir_api(client, admin_user, patient_record):
    client.force_login(admin_user)
    assert client.get(f"/fhir/Patient/{patient_record}").status_code == 200


# --- Verified tokens remembered ---------------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch):
    """Counts RS256 verifications (jwt.decode calls in smart_auth.tokens)."""
    calls = []
    real_decode = jwt.decode

    def decode(*args, **kwargs):
        calls.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr("smart_auth.tokens.jwt.decode", decode)
    return calls


def test_a_token_seen_again_is_not_verified_again_but_still_checked(
    patient_user, public_app, decodes
):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    for _ in range(3):
        assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    assert len(decodes) == 1
    do_revoke_app_tokens(public_app)  # the revocation record is read on every request
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 401


def test_a_remembered_token_expires_on_time(patient_user, public_app, monkeypatch):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    expired_at = claims_of(token["access_token"])["exp"] + 31  # past the 30 s leeway
    monkeypatch.setattr("smart_auth.tokens.time.time", lambda: expired_at)
    response = fhir_get("/fhir/Patient/pat-1", token["access_token"])
    assert_unauthorized(response)
    assert "expired" in response["WWW-Authenticate"]


def test_a_remembered_token_of_a_key_no_longer_published_is_refused(
    patient_user, public_app, monkeypatch
):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    monkeypatch.setattr(keys.key_ring, "verification_key", lambda kid: None)
    response = fhir_get("/fhir/Patient/pat-1", token["access_token"])
    assert_unauthorized(response)
    assert "not signed by a key of this server" in response["WWW-Authenticate"]


def test_a_token_remembered_for_one_audience_is_not_for_another(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, SCOPES)
    assert default_token_signer.verify_access_token(token["access_token"])["patient"] == "pat-1"
    with pytest.raises(InvalidToken, match="not meant for this server"):
        default_token_signer.verify_admin_token(token["access_token"])


def test_the_memory_of_verified_tokens_is_bounded():
    remembered = VerifiedTokens(size=2)
    for name in ("a", "b", "a", "c"):  # "a" used again: "b" is the least recently used
        if remembered.get(name, ()) is None:
            remembered.add(name, (), "kid", {})
    assert remembered.get("a", ()) and remembered.get("c", ())
    assert remembered.get("b", ()) is None
