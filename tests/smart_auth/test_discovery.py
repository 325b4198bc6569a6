"""Discovery: smart-configuration (root and FHIR base), openid-configuration, JWKS, and the
CapabilityStatement's SMART security element, all naming the same endpoints."""

import pytest
from django.conf import settings

from smart_auth.discovery import CAPABILITIES

pytestmark = pytest.mark.django_db

SEED_CAPABILITIES = [
    "launch-ehr",
    "client-public",
    "client-confidential-symmetric",
    "sso-openid-connect",
    "context-ehr-patient",
    "permission-patient",
    "permission-user",
]
SEED_SCOPES = [
    "openid",
    "fhirUser",
    "patient/*.read",
    "patient/*.write",
    "user/*.read",
    "user/*.write",
    "system/*.read",
]
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def test_smart_configuration_is_identical_at_the_root_and_the_fhir_base(client):
    root = client.get("/.well-known/smart-configuration", headers={"Accept": "application/json"})
    fhir = client.get("/fhir/.well-known/smart-configuration")
    assert root.status_code == fhir.status_code == 200
    assert root["Content-Type"].startswith("application/json")
    assert root["Access-Control-Allow-Origin"] == "*"
    assert root.json() == fhir.json()


def test_smart_configuration_has_every_field_the_ig_requires_or_recommends(client):
    config = client.get("/.well-known/smart-configuration").json()
    base = settings.PUBLIC_BASE_URL
    assert config["issuer"] == base
    assert config["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert config["authorization_endpoint"] == f"{base}/smart/authorize"
    assert config["token_endpoint"] == f"{base}/smart/token"
    assert config["introspection_endpoint"] == f"{base}/smart/introspect"
    assert config["revocation_endpoint"] == f"{base}/smart/revoke"
    assert config["management_endpoint"] == f"{base}/smart/manage"
    assert "authorization_code" in config["grant_types_supported"]
    assert config["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert set(SEED_SCOPES) <= set(config["scopes_supported"])
    assert set(SEED_CAPABILITIES) <= set(config["capabilities"])
    assert config["capabilities"] == CAPABILITIES


def test_backend_services_and_asymmetric_clients_are_advertised(client):
    """SMART Backend Services §Discovery and client-confidential-asymmetric: what Inferno reads."""
    config = client.get("/.well-known/smart-configuration").json()
    assert config["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS384",
        "ES384",
        "RS256",
        "ES256",
    ]
    assert {"system/*.read", "system/*.rs"} <= set(config["scopes_supported"])
    assert {"client-confidential-asymmetric", "permission-v2"} <= set(config["capabilities"])
    openid = client.get("/.well-known/openid-configuration").json()
    for field in (
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    ):
        assert openid[field] == config[field], field


def test_every_advertised_endpoint_answers(client):
    config = client.get("/.well-known/smart-configuration").json()
    base = settings.PUBLIC_BASE_URL
    for name in ("jwks_uri", "management_endpoint"):
        path = config[name].removeprefix(base)
        assert client.get(path).status_code in (200, 302), name
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = config[name].removeprefix(base)
        assert client.post(path, {}).status_code in (400, 401, 403), name
    assert client.get("/smart/style.json").status_code == 200


def test_openid_configuration_matches_the_issuer_of_id_tokens(client):
    config = client.get("/.well-known/openid-configuration").json()
    smart = client.get("/.well-known/smart-configuration").json()
    assert config["issuer"] == smart["issuer"]
    assert config["jwks_uri"] == smart["jwks_uri"]
    for field in (
        "authorization_endpoint",
        "token_endpoint",
        "response_types_supported",
        "subject_types_supported",
    ):
        assert config[field]
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "fhirUser" in config["claims_supported"]


def test_jwks_lists_rsa_keys_with_kids(client):
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(key["kty"] == "RSA" and key["kid"] for key in keys)


def test_style_document_is_public_json(client):
    response = client.get("/smart/style.json")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "color_background" in response.json()


def test_capability_statement_carries_the_smart_security_service_and_oauth_uris(client):
    response = client.get("/fhir/metadata", headers={"Accept": "application/fhir+json"})
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["rest"][0]["resource"]  # still fhir_api's statement
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (extension,) = [e for e in security["extension"] if e["url"] == OAUTH_URIS]
    uris = {sub["url"]: sub["valueUri"] for sub in extension["extension"]}
    config = client.get("/.well-known/smart-configuration").json()
    assert uris == {
        "authorize": config["authorization_endpoint"],
        "token": config["token_endpoint"],
        "introspect": config["introspection_endpoint"],
        "revoke": config["revocation_endpoint"],
        "manage": config["management_endpoint"],
    }


def test_capability_statement_is_not_changed_for_later_requests(client):
    from fhir_api.capabilities import capability_statement

    client.get("/fhir/metadata")
    assert "extension" not in capability_statement()["rest"][0].get("security", {})
