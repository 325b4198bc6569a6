"""Requests redeeming one authorization code, or one refresh token, at the same moment:
exactly one gets tokens.

Needs real row locks, so it runs on PostgreSQL only (SQLite serialises writers anyway)."""

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from tests.smart_support import (
    Launch,
    authorize,
    code_from,
    exchange,
    full_launch,
    logged_in,
    race,
    refresh,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]

SCOPES = "launch/patient openid fhirUser patient/*.rs offline_access"
ATTEMPTS = 4


def assert_one_winner(results):
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (ATTEMPTS - 1), results
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)


def test_concurrent_redemptions_of_one_code_succeed_once(patient_user, confidential_app):
    app, secret = confidential_app
    launch = Launch.new(app, SCOPES)
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    assert_one_winner(race(lambda: exchange(Client(), launch, code, secret=secret), ATTEMPTS))
    # The losers presented a used code, which revokes what the winner got (RFC 6749 §4.1.2).
    assert not get_access_token_model().objects.exists()


def test_concurrent_refreshes_of_one_token_succeed_once(patient_user, confidential_app):
    """The losers present a refresh token that has just been rotated, which is what a stolen
    one looks like (RFC 9700 §4.14.2): the whole family is revoked, the winner's new tokens
    too."""
    app, secret = confidential_app
    _launch, token = full_launch(patient_user, app, SCOPES, secret=secret)
    presented = token["refresh_token"]
    assert_one_winner(race(lambda: refresh(Client(), app, presented, secret=secret), ATTEMPTS))
    assert not get_access_token_model().objects.exists()
    assert not get_refresh_token_model().objects.filter(revoked__isnull=True).exists()
