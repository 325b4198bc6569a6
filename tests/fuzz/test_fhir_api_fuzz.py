"""Hostile input to every FHIR interaction: never a 500, never a partial write, and every
refusal an OperationOutcome with a 4xx status.

Django's test client re-raises an exception raised in a view, so a crash fails the example
with its traceback; a caught-and-rendered 500 fails the status assertion.
"""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_api.models import Resource, ResourceVersion
from tests.conftest import FHIR_JSON

from .strategies import (
    bundle_like,
    header_values,
    json_values,
    nasty_text,
    query_params,
    resource_like,
    resource_type_names,
)

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def stored_counts():
    """Resources and versions, without the AuditEvents every request (refused too) leaves."""
    return (
        Resource.objects.exclude(resource_type="AuditEvent").count(),
        ResourceVersion.objects.exclude(resource__resource_type="AuditEvent").count(),
    )


def assert_fhir_answer(response):
    """A 2xx/3xx, or a 4xx whose body is an OperationOutcome. Never a 5xx."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
        outcome = json.loads(response.content)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"] and outcome["issue"][0]["severity"] in ("error", "fatal")


def assert_nothing_written_unless_ok(response, before):
    if response.status_code >= 400:
        assert stored_counts() == before, "a refused write changed the store"


def path_segment(text):
    return quote(str(text), safe="")


@FUZZ
@given(resource_type=resource_type_names, body=resource_like() | json_values)
def test_create_with_hostile_bodies(fhir, resource_type, body):
    before = stored_counts()
    response = fhir.post(
        f"/fhir/{path_segment(resource_type)}", json.dumps(body), content_type=FHIR_JSON
    )
    assert_fhir_answer(response)
    assert_nothing_written_unless_ok(response, before)


@FUZZ
@given(raw=st.binary(max_size=300), content_type=header_values)
def test_create_with_bytes_that_are_not_json(fhir, raw, content_type):
    before = stored_counts()
    response = fhir.post("/fhir/Patient", raw, content_type=content_type or "text/plain")
    assert_fhir_answer(response)
    assert_nothing_written_unless_ok(response, before)


@FUZZ
@given(fhir_id=nasty_text, body=resource_like("Patient"), if_match=header_values)
def test_update_with_hostile_ids_bodies_and_preconditions(fhir, fhir_id, body, if_match):
    before = stored_counts()
    response = fhir.put(
        f"/fhir/Patient/{path_segment(fhir_id)}",
        json.dumps(body),
        content_type=FHIR_JSON,
        headers={"If-Match": if_match} if if_match else {},
    )
    assert_fhir_answer(response)
    assert_nothing_written_unless_ok(response, before)


@FUZZ
@given(bundle=bundle_like())
def test_transaction_bundles_are_all_or_nothing(fhir, bundle):
    before = stored_counts()
    response = fhir.post("/fhir", json.dumps(bundle), content_type=FHIR_JSON)
    assert_fhir_answer(response)
    if bundle.get("type") == "transaction":
        assert_nothing_written_unless_ok(response, before)


@FUZZ
@given(resource_type=resource_type_names, params=query_params)
def test_search_with_hostile_parameters(fhir, resource_type, params):
    response = fhir.get(f"/fhir/{path_segment(resource_type)}", params)
    assert_fhir_answer(response)


@FUZZ
@given(params=query_params)
def test_post_search_with_hostile_form(fhir, params):
    response = fhir.post("/fhir/Observation/_search", params)
    assert_fhir_answer(response)


@FUZZ
@given(
    resource_type=resource_type_names,
    fhir_id=nasty_text,
    version=nasty_text,
    accept=header_values,
    interaction=st.sampled_from(["read", "vread", "history", "delete"]),
)
def test_reads_history_and_deletes_with_hostile_paths(
    fhir, resource_type, fhir_id, version, accept, interaction
):
    base = f"/fhir/{path_segment(resource_type)}/{path_segment(fhir_id)}"
    headers = {"Accept": accept} if accept else {}
    before = stored_counts()
    if interaction == "read":
        response = fhir.get(base, headers=headers)
    elif interaction == "vread":
        response = fhir.get(f"{base}/_history/{path_segment(version)}", headers=headers)
    elif interaction == "history":
        response = fhir.get(f"{base}/_history", {"_count": version}, headers=headers)
    else:
        response = fhir.delete(base, headers=headers)
    assert response.status_code != 406 or accept, response.content
    if response.status_code != 406:
        assert_fhir_answer(response)
    assert_nothing_written_unless_ok(response, before)


@FUZZ
@given(token=header_values)
def test_hostile_bearer_tokens_get_a_401_challenge(token):
    from django.test import Client

    response = Client().get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.content[:300]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.content)["resourceType"] == "OperationOutcome"
