"""How a registered app authenticates and which grants it uses: the rules the registry API
(/smart/apps) and Django admin both apply, as plain functions over field values.

- A public app (no secret can be kept in a browser or on a phone) authenticates with `none`
  and uses authorization_code only.
- A confidential app authenticates with a client secret (`client_secret_basic` or
  `client_secret_post`: either is accepted from it) or with `private_key_jwt`, for which it
  registers exactly one of an inline JWKS or a JWKS URL, public keys only.
- `client_credentials` (backend services) is for confidential apps with at least one
  `system/` scope; `authorization_code` needs a redirect URI.
"""

from collections import defaultdict

from oauth2_provider.models import AbstractApplication, get_application_model

from . import jwks
from .scopes import parse_scopes

SmartApp = get_application_model()
SECRET_METHODS = (SmartApp.AUTH_SECRET_BASIC, SmartApp.AUTH_SECRET_POST)


def default_method(confidential):
    """The method an app gets when it names none: a secret if it can keep one."""
    return SmartApp.AUTH_SECRET_BASIC if confidential else SmartApp.AUTH_NONE


def dot_grant_type(grant_types):
    """DOT's single `authorization_grant_type` for a list of ours (DOT's own checks read it)."""
    if "authorization_code" in grant_types:
        return AbstractApplication.GRANT_AUTHORIZATION_CODE
    return AbstractApplication.GRANT_CLIENT_CREDENTIALS


def check_client_auth(
    *, confidential, method, grant_types, jwks_document, jwks_uri, scopes, redirect_uris
):
    """{model field name: [messages]} for a registration these rules refuse; {} if none do."""
    errors = defaultdict(list)
    _check_grant_types(errors, confidential, grant_types, scopes, redirect_uris)
    if not confidential and method != SmartApp.AUTH_NONE:
        errors["token_endpoint_auth_method"].append(
            "a public app does not authenticate: its method is none"
        )
    elif confidential and method == SmartApp.AUTH_NONE:
        errors["token_endpoint_auth_method"].append(
            "a confidential app authenticates with client_secret_basic, client_secret_post "
            "or private_key_jwt"
        )
    if method == SmartApp.AUTH_PRIVATE_KEY_JWT:
        if bool(jwks_document) == bool(jwks_uri):
            errors["jwks"].append("private_key_jwt needs exactly one of jwks and jwks_uri")
    elif jwks_document or jwks_uri:
        errors["jwks"].append("jwks and jwks_uri are only for private_key_jwt apps")
    if jwks_document and (problems := jwks.check_jwks(jwks_document)):
        errors["jwks"].extend(problems)
    if jwks_uri and (problem := jwks.check_jwks_uri(jwks_uri)):
        errors["jwks_uri"].append(problem)
    return dict(errors)


def _check_grant_types(errors, confidential, grant_types, scopes, redirect_uris):
    unknown = [grant for grant in grant_types if grant not in SmartApp.GRANT_TYPES]
    if unknown:
        errors["grant_types"].append(
            f"unknown grant types {', '.join(unknown)}; use {' or '.join(SmartApp.GRANT_TYPES)}"
        )
    if not grant_types:
        errors["grant_types"].append("at least one grant type is required")
    if "client_credentials" in grant_types:
        if not confidential:
            errors["grant_types"].append("client_credentials is for confidential apps only")
        if not any(scope.context == "system" for scope in parse_scopes(scopes)):
            errors["scopes"].append("a backend service (client_credentials) needs a system/ scope")
    if "authorization_code" in grant_types and not redirect_uris:
        errors["redirect_uris"].append("authorization_code needs at least one redirect URI")
