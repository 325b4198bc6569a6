"""Several requests presenting one refresh token at the same moment: exactly one rotates it.

The others present a token that has just been rotated, which is what a stolen refresh token
looks like (RFC 9700 §4.14.2), so the whole family is revoked, the winner's new tokens too.
Needs real row locks, so it runs on PostgreSQL only (SQLite serialises writers anyway)."""

import threading

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from tests.smart_support import full_launch, refresh

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]

ATTEMPTS = 4


def test_concurrent_refreshes_of_one_token_succeed_once(patient_user, confidential_app):
    app, secret = confidential_app
    _launch, token = full_launch(
        patient_user, app, "launch/patient openid patient/*.rs offline_access", secret=secret
    )
    barrier = threading.Barrier(ATTEMPTS)
    results = []

    def present():
        try:
            barrier.wait()
            response = refresh(Client(), app, token["refresh_token"], secret=secret)
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=present) for _ in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (ATTEMPTS - 1), results
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    assert not get_access_token_model().objects.exists()
    assert not get_refresh_token_model().objects.filter(revoked__isnull=True).exists()
