"""The troubleshooting table of seed 002 (the SMART-on-FHIR integration guide), row by row:
each "likely cause" is something this server must handle correctly."""

from datetime import timedelta

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from smart_auth import keys
from smart_auth.launch import do_create_launch
from smart_auth.models import LaunchHandle
from tests.smart_support import (
    Launch,
    authorize,
    claims_of,
    code_from,
    exchange,
    fhir_get,
    full_launch,
    logged_in,
    make_app,
    query_of,
    start,
)

pytestmark = pytest.mark.django_db


def test_row_invalid_launch_parameter_expired_or_malformed(clinician, patient_record):
    app, _ = make_app(
        "EHR",
        confidential=False,
        scopes="launch patient/*.rs",
        launch_uri="https://app.example.org/l",
    )
    handle = do_create_launch(clinician, app, patient=patient_record)
    LaunchHandle.objects.update(expires=timezone.now() - timedelta(minutes=1))
    for value in (handle, "not-a-launch"):
        launch = Launch.new(app, "launch patient/*.rs", extra={"launch": value})
        params = query_of(start(logged_in(clinician), launch)["Location"])
        assert params["error"] == "invalid_request"
        assert params["error_description"].startswith("Invalid launch parameter")
        assert "code" not in params


@pytest.mark.parametrize(
    "scope", ["launch/patient patient/*.read", "patient/*.rs", "launch/patient openid"]
)
def test_row_missing_patient_claim_in_token(
    patient_user, clinician, public_app, patient_record, scope
):
    """Whenever a patient is in context, it is in both the token response and the JWT."""
    for user in (patient_user, clinician):
        _launch, token = full_launch(user, public_app, scope, patient=patient_record)
        assert token["patient"] == patient_record
        assert claims_of(token["access_token"])["patient"] == patient_record


def test_row_fhir_api_returns_401_when_aud_does_not_match(patient_user, public_app, settings):
    _launch, token = full_launch(patient_user, public_app, "launch/patient patient/*.rs")
    assert fhir_get("/fhir/Patient/pat-1", token["access_token"]).status_code == 200
    claims = claims_of(token["access_token"])
    assert claims["aud"] == settings.FHIR_BASE_URL
    key = keys.get_signing_key()
    claims["aud"] = "https://ehr.example.org/fhir"
    other_aud = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    assert fhir_get("/fhir/Patient/pat-1", other_aud).status_code == 401
    # and an app cannot even get a code for another FHIR server
    launch = Launch.new(
        public_app, "launch/patient patient/*.rs", aud="https://ehr.example.org/fhir"
    )
    assert "code" not in query_of(start(logged_in(patient_user), launch)["Location"])


def test_row_scope_not_granted_because_the_app_is_not_registered_for_it(patient_user):
    app, _ = make_app("Narrow", confidential=False, scopes="launch/patient patient/Observation.rs")
    launch = Launch.new(
        app, "launch/patient patient/Observation.rs patient/Condition.rs offline_access"
    )
    token = exchange(
        Client(), launch, code_from(authorize(logged_in(patient_user), launch), launch)
    ).json()
    assert token["scope"] == "launch/patient patient/Observation.rs"
    assert claims_of(token["access_token"])["scope"] == token["scope"]
    assert "refresh_token" not in token


def test_row_state_mismatch(patient_user, public_app):
    """The state comes back exactly, on success and on error, so the app's check holds."""
    state = "Zm9v+/=bar baz&x=1"
    launch = Launch.new(public_app, "launch/patient patient/*.rs", state=state)
    assert query_of(authorize(logged_in(patient_user), launch))["state"] == state
    bad = Launch.new(public_app, "launch/patient patient/*.rs", state=state, method="plain")
    assert query_of(start(logged_in(patient_user), bad)["Location"])["state"] == state
