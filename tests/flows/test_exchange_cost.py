"""What a code exchange and a refresh cost the database: each row read once, locked, with what
sits beside it, and nothing re-read or re-deleted (smart_auth/redemption.py). DOT's own paths
took 19 and 25 statements."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import get_access_token_model, get_grant_model

from smart_auth.models import LaunchContext
from smart_auth.redemption import ACCESS_TOKEN_REFERRERS, GRANT_REFERRERS
from tests.smart_support import (
    Launch,
    authorize,
    code_from,
    exchange,
    fhir_get,
    full_launch,
    logged_in,
    refresh,
    statements_of,
)

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"

pytestmark = pytest.mark.django_db(transaction=True)

BEGIN, COMMIT = ("BEGIN",), ("COMMIT",)
APP = ("SELECT", "smart_auth_smartapp")
ID_TOKEN = ("INSERT", "oauth2_provider_idtoken")
NEW_PAIR = [("INSERT", "oauth2_provider_accesstoken"), ("INSERT", "oauth2_provider_refreshtoken")]


def test_a_code_exchange_reads_the_grant_once(patient_user, confidential_app, without_audit):
    app, secret = confidential_app
    full_launch(patient_user, app, SCOPES, secret=secret)  # warm: keys made and parsed
    launch = Launch.new(app, SCOPES)
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    with CaptureQueriesContext(connection) as context:
        response = exchange(Client(), launch, code, secret=secret)
    assert response.status_code == 200, response.content
    assert statements_of(context) == [
        BEGIN,
        ("SELECT", "oauth2_provider_grant"),  # locked, with its user and LaunchContext
        APP,
        ID_TOKEN,
        ("SELECT", "oauth2_provider_grant"),  # DOT's RFC 8707 resource narrowing
        *NEW_PAIR,
        ("UPDATE", "smart_auth_launchcontext"),  # redeemed, and for which token
        ("DELETE", "oauth2_provider_grant"),
        COMMIT,
    ]
    context = LaunchContext.objects.latest("pk")
    assert context.redeemed_at is not None and context.grant is None
    assert context.access_token == get_access_token_model().objects.latest("pk")
    assert not get_grant_model().objects.exists()


def test_a_refresh_reads_the_refresh_token_once(patient_user, confidential_app, without_audit):
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    first = refresh(Client(), app, token["refresh_token"], secret=secret).json()
    # The first refresh retired the token the code bought, which the LaunchContext named.
    assert LaunchContext.objects.get().access_token is None
    with CaptureQueriesContext(connection) as context:
        response = refresh(Client(), app, first["refresh_token"], secret=secret)
    assert response.status_code == 200, response.content
    assert statements_of(context) == [
        BEGIN,
        APP,
        ("SELECT", "oauth2_provider_refreshtoken"),  # locked, with user, app, access token
        ("SELECT", "smart_auth_launchcontext"),
        ID_TOKEN,
        ("UPDATE", "oauth2_provider_refreshtoken"),  # revoked
        ("DELETE", "oauth2_provider_accesstoken"),  # the one it was paired with
        *NEW_PAIR,
        COMMIT,
    ]
    assert fhir_get("/fhir/Patient/pat-1", first["access_token"]).status_code == 401
    assert fhir_get("/fhir/Patient/pat-1", response.json()["access_token"]).status_code == 200
    assert refresh(Client(), app, first["refresh_token"], secret=secret).status_code == 400


def referrers(model):
    return {
        (field.related_model, field.field.name)
        for field in model._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete
    }


def test_deleting_without_the_collector_clears_every_reference():
    """redemption.delete_row skips Django's collector: the references its callers clear must
    be all there are."""
    assert referrers(get_grant_model()) == GRANT_REFERRERS
    assert referrers(get_access_token_model()) == ACCESS_TOKEN_REFERRERS
