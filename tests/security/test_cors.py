"""CORS: browser apps may call the FHIR API, the OAuth endpoints they use and discovery, from
any origin and without credentials; the pages for people and the admin APIs never answer
cross-origin requests."""

import pytest
from django.test import Client

from tests.smart_support import fhir_get, full_launch

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.org"

OPEN = [
    "/fhir/metadata",
    "/fhir/Patient",
    "/fhir/Patient/pat-1/_history/1",
    "/fhir/.well-known/smart-configuration",
    "/fhir",
    "/.well-known/smart-configuration",
    "/.well-known/openid-configuration",
    "/.well-known/jwks.json",
    "/smart/style.json",
    "/smart/token",
    "/smart/revoke",
    "/smart/introspect",
]
CLOSED = [
    "/smart/login",
    "/smart/logout",
    "/smart/authorize",
    "/smart/authorize/some-request",
    "/smart/authorize/some-request/patient",
    "/smart/manage",
    "/smart/launch",
    "/smart/ehr/",
    "/smart/ehr/patients",
    "/smart/apps",
    "/smart/apps/1",
    "/auth/token",
    "/admin/",
    "/admin/login/",
]


def preflight(path, method="POST", headers="authorization, content-type"):
    return Client().options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.mark.parametrize("path", OPEN)
def test_app_endpoints_answer_a_preflight_for_any_origin(path):
    response = preflight(path)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "prefer", "if-match", "if-none-match"} <= allowed
    assert "if-none-exist" in allowed
    methods = {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods


@pytest.mark.parametrize("path", CLOSED)
def test_pages_for_people_and_admin_apis_answer_no_cross_origin_request(path):
    for response in (
        preflight(path),
        Client().get(path, headers={"Origin": ORIGIN}),
        Client().post(path, {}, headers={"Origin": ORIGIN}),
    ):
        assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_a_fhir_read_exposes_the_headers_an_app_needs(patient_user, public_app):
    _launch, token = full_launch(patient_user, public_app, "launch/patient patient/*.rs")
    response = Client().get(
        "/fhir/Patient/pat-1",
        headers={"Authorization": f"Bearer {token['access_token']}", "Origin": ORIGIN},
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"location", "etag", "content-location", "last-modified"} <= exposed
    assert "origin" in response["Vary"].lower()


def test_an_error_is_readable_cross_origin_too():
    response = fhir_get("/fhir/Patient/pat-1", "not-a-token", Client(headers={"Origin": ORIGIN}))
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in response["Access-Control-Expose-Headers"]


def test_a_token_response_allows_any_origin_without_credentials(patient_user, public_app):
    from tests.smart_support import Launch, authorize, code_from, exchange, logged_in

    launch = Launch.new(public_app, "launch/patient patient/*.rs")
    code = code_from(authorize(logged_in(patient_user), launch), launch)
    response = exchange(Client(headers={"Origin": "https://elsewhere.example"}), launch, code)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
