"""The discovery documents, as dicts the views only render.

`/.well-known/smart-configuration` (SMART App Launch 2.2 §Conformance), served identically at the
root and under the FHIR base; `/.well-known/openid-configuration`; and the SMART `security`
element of the CapabilityStatement (the `oauth-uris` extension older clients such as the Python
`fhirclient` discover through). All three list the same endpoint URLs.
"""

from .conf import get_endpoints, get_issuer
from .jwks import ALGORITHMS
from .scopes import SUPPORTED_SCOPES

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

# Only what works end to end on this server (each has a test under tests/flows/).
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration():
    endpoints = get_endpoints()
    return {
        "issuer": get_issuer(),
        "jwks_uri": endpoints["jwks"],
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "introspection_endpoint": endpoints["introspect"],
        "revocation_endpoint": endpoints["revoke"],
        "management_endpoint": endpoints["manage"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration():
    endpoints = get_endpoints()
    return {
        "issuer": get_issuer(),
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "jwks_uri": endpoints["jwks"],
        "introspection_endpoint": endpoints["introspect"],
        "revocation_endpoint": endpoints["revoke"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "profile", "offline_access", "online_access"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "fhirUser",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
        ],
        "authorization_response_iss_parameter_supported": True,
    }


def capability_security():
    """The `rest[0].security` element: SMART-on-FHIR service and the oauth-uris extension."""
    endpoints = get_endpoints()
    return {
        "cors": True,
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE_SYSTEM, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": name, "valueUri": endpoints[name]}
                    for name in ("authorize", "token", "introspect", "revoke", "manage")
                ],
            }
        ],
    }


def with_security(statement):
    """A copy of a CapabilityStatement dict with the SMART security element on rest[0].

    The statement from fhir_api is partly a shared cached object, so nothing is mutated.
    """
    rest = list(statement.get("rest") or [{"mode": "server"}])
    rest[0] = {**rest[0], "security": capability_security()}
    return {**statement, "rest": rest}
