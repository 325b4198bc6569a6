"""`clients.get_app`: the token endpoint's app lookup, one precompiled statement that gives
what the ORM would."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from smart_auth.clients import get_app
from smart_auth.models import SmartApp

pytestmark = pytest.mark.django_db


def field_values(app):
    return {field.attname: getattr(app, field.attname) for field in app._meta.concrete_fields}


def test_the_app_is_the_one_the_orm_gives(confidential_app):
    app, _secret = confidential_app
    app.jwks = {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": "x", "y": "y"}]}
    app.save()
    expected = SmartApp.objects.get(pk=app.pk)
    with CaptureQueriesContext(connection) as queries:
        found = get_app(app.client_id)
    assert len(queries) == 1
    assert isinstance(found, SmartApp) and found.pk == app.pk
    assert field_values(found) == field_values(expected)  # datetimes and JSON converted too
    assert found.jwks["keys"][0]["kid"] == "k1"
    assert found._state.adding is False  # a saved row: save() updates it, not inserts


def test_no_app_for_an_unknown_id_or_one_no_app_can_have(public_app):
    assert get_app("not-registered") is None
    assert get_app(public_app.client_id + "\x00") is None
    assert get_app("") is None
