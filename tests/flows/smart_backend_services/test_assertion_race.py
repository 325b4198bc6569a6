"""Several requests presenting one client assertion at the same moment: exactly one gets a
token. The jti's replay record is a unique row inserted inside each request's transaction,
so the database lets one through and makes the others wait, then refuses them.

Needs real concurrent writers, so it runs on PostgreSQL only (SQLite serialises them)."""

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_access_token_model

from smart_auth.models import UsedAssertion
from tests.smart_support import (
    backend_token_request,
    make_backend_app,
    public_jwk,
    race,
    sign_assertion,
    signing_key,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers"),
]

ATTEMPTS = 4


def test_concurrent_uses_of_one_assertion_succeed_once():
    key = signing_key("RS384")
    app = make_backend_app(jwks={"keys": [public_jwk(key, "k1")]})
    assertion = sign_assertion(app.client_id, key, "k1")
    results = race(lambda: backend_token_request(Client(), assertion), ATTEMPTS)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [401] * (ATTEMPTS - 1), results
    replay = {
        "error": "invalid_client",
        "error_description": "client_assertion jti was already used",
    }
    assert [body for status, body in results if status == 401] == [replay] * (ATTEMPTS - 1)
    assert get_access_token_model().objects.count() == 1
    assert UsedAssertion.objects.count() == 1
