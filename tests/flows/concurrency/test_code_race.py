"""Two requests redeeming one authorization code at the same moment: exactly one gets tokens.

Needs real row locks, so it runs on PostgreSQL only (SQLite serialises writers anyway)."""

import threading

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_access_token_model

from tests.smart_support import Launch, authorize, code_from, exchange, logged_in

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]

ATTEMPTS = 4


def test_concurrent_redemptions_of_one_code_succeed_once(patient_user, confidential_app):
    app, secret = confidential_app
    launch = Launch.new(app, "launch/patient openid fhirUser patient/*.rs offline_access")
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    barrier = threading.Barrier(ATTEMPTS)
    results = []

    def redeem():
        try:
            barrier.wait()
            response = exchange(Client(), launch, code, secret=secret)
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (ATTEMPTS - 1), results
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    # The losers presented a used code, which revokes what the winner got (RFC 6749 §4.1.2).
    assert not get_access_token_model().objects.exists()
