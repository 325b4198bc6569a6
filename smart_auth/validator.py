"""`SmartValidator`: django-oauth-toolkit's OAuth2Validator taught SMART (OAUTH2_VALIDATOR_CLASS).

What it adds, each in the hook DOT and oauthlib call for it:

- client authentication: `private_key_jwt` client assertions (RFC 7523, `assertions.py`) at
  the token, revocation and introspection endpoints, and each app only by the method it
  registered (`authenticate_client`, `client_authentication_required`).
- backend services: `client_credentials` grants only registered `system/` scopes
  (`validate_scopes`); no refresh token, a short lifetime (`server.SmartServer`).
- scopes: a requested scope the app is not registered for is dropped, not refused
  (`validate_scopes`); a refresh never exceeds what the app is registered for today
  (`get_original_scopes`).
- launch context: stored beside the Grant when the code is made (`_create_authorization_code`),
  read back at the exchange (`validate_code`) and at each refresh (`validate_refresh_token`),
  so the access token generator, the token response and the id_token all see it.
- single redemption: a code or refresh exchange runs in one transaction (SmartTokenView) and
  locks the Grant or refresh token row it redeems, read once with what sits beside it
  (`redemption.py`); a used code presented again revokes every token issued from it.
- refresh tokens only with offline_access/online_access; online ones die with the login session.
- token response: patient, encounter, fhirUser, need_patient_banner, smart_style_url.
- id_token: `fhirUser` claim, our issuer.
"""

import hashlib
import json
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone
from oauth2_provider import cimd
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from . import audit
from .assertions import InvalidAssertion, verify_client_assertion
from .clients import get_app
from .conf import get_fhir_base, get_issuer
from .grants import do_revoke_authorization
from .launch import token_response_fields
from .models import LaunchContext
from .redemption import consume_grant, live_refresh_token, locked_grant, retire_refresh_token
from .registration import SECRET_METHODS
from .scopes import filter_registered, has_refresh_access
from .tokens import default_token_signer

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
SmartApp = get_application_model()


def code_checksum(code):
    return hashlib.sha256(code.encode()).hexdigest()


class SmartValidator(OAuth2Validator):
    # A new dict: DOT's docs example `.update()`s the base class's dict in place.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "fhirUser": "fhirUser"}

    # --- Client authentication ----------------------------------------------------------

    def client_authentication_required(self, request, *args, **kwargs):
        """A request carrying a client assertion authenticates, whatever else it sends
        (backend services send no client_id, so DOT's check would look up None)."""
        if _assertion_of(request) is not None:
            return True
        return super().client_authentication_required(request, *args, **kwargs)

    def authenticate_client(self, request, *args, **kwargs):
        """A client assertion (private_key_jwt), else DOT's client secret (Basic or body).

        Each app authenticates only the way it registered: a private_key_jwt app never with a
        secret (DOT would find an empty secret equal to an empty stored one), a public app
        never, a secret app never with an assertion. A refusal with a reason raises
        InvalidClientError, which the token and revocation endpoints answer as a 401 with
        that `error_description` (SmartIntrospectView catches it and answers its own 401).
        """
        assertion = _assertion_of(request)
        if assertion is not None:
            return self._authenticate_assertion(request, *assertion)
        # DOT's order (Basic, then the body), keeping the app either step found: the body
        # step forgets the one Basic named when the body names no client_id.
        authenticated = self._authenticate_basic_auth(request)
        client = request.client
        if not authenticated:
            authenticated = self._authenticate_request_body(request)
            client = request.client or client
        if client is not None and not _uses_secret(client):
            raise errors.InvalidClientError(description=_not_by_secret(client), request=request)
        return authenticated

    def _load_application(self, client_id, request):
        """DOT's, with the app read by one precompiled statement (`clients.get_app`). DOT's own
        lookup handles the rest: a client already on the request, an id no app is stored
        under (a client ID metadata document, if enabled) and an app that is not usable.

        A client id with a NUL byte names no app: PostgreSQL cannot compare it, and psycopg 3
        raises DataError where DOT expects a ValueError (a 500, not a 401)."""
        if isinstance(client_id, str) and "\x00" in client_id:
            request.client = None
            return None
        app = get_app(client_id) if not request.client and isinstance(client_id, str) else None
        if app is not None:
            app = cimd.refresh_if_stale(app, request)
            if app.is_usable(request):
                request.client = app
                return app
        return super()._load_application(client_id, request)

    def _authenticate_assertion(self, request, assertion_type, assertion):
        if self._extract_basic_auth(request) or getattr(request, "client_secret", None):
            raise errors.InvalidClientError(
                description="use one client authentication method: a client_assertion or "
                "a client secret, not both",
                request=request,
            )
        try:
            app = verify_client_assertion(assertion_type, assertion, client_id=request.client_id)
        except InvalidAssertion as error:
            raise errors.InvalidClientError(description=str(error), request=request) from None
        request.client = app
        request.client_id = app.client_id
        return True

    # --- Scopes -------------------------------------------------------------------------

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        """Keep the requested scopes the app is registered for; refuse only if none remain.

        A backend service (client_credentials) acts for no person and no patient, so only its
        `system/` scopes can be granted; openid, launch and patient/ or user/ scopes are
        dropped, and asking for none is an error rather than a default.
        """
        if request.grant_type == "client_credentials":
            request.scopes = _backend_scopes(scopes, client.scope_list, request)
            return True
        request.scopes = filter_registered(scopes, client.scope_list)
        return bool(request.scopes)

    # --- Authorization requests ---------------------------------------------------------

    def validate_silent_login(self, request):
        """prompt=none: the views check the login and the remembered approval themselves."""
        return True

    def validate_silent_authorization(self, request):
        return True

    def _create_authorization_code(self, request, code, expires=None):
        """Make the Grant, and beside it the LaunchContext the consent step decided."""
        grant = super()._create_authorization_code(request, code, expires)
        decided = dict(getattr(request, "smart_launch", None) or {})
        LaunchContext.objects.create(
            application=request.client,
            user=request.user,
            grant=grant,
            code_checksum=code_checksum(code["code"]),
            **decided,
        )
        return grant

    # --- Code exchange ------------------------------------------------------------------

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        """oauthlib's first question about a code (is it an OpenID one?) reads the Grant for
        the whole exchange: locked, with its user and LaunchContext (`redemption.py`)."""
        grant = self._locked_grant(code, request)
        return grant.scope.split() if grant is not None else []

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        """The Grant stays locked for the rest of the exchange; a used code revokes what it
        issued.

        SmartTokenView wraps the exchange in one transaction, so on PostgreSQL a second request
        with the same code waits here until the first commits, then finds the Grant gone.
        """
        grant = self._locked_grant(code, request)
        if grant is None or grant.application_id != client.pk:
            self._revoke_if_replayed(code, client)
            return False
        context = getattr(grant, "smart_context", None)
        if grant.is_expired() or context is None or not grant.user.is_active:
            return False
        request.smart_context = context
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        return True

    def _revoke_if_replayed(self, code, client):
        context = LaunchContext.objects.filter(
            code_checksum=code_checksum(code), application=client, redeemed_at__isnull=False
        ).first()
        if context is not None:
            do_revoke_authorization(context)

    def _locked_grant(self, code, request):
        """The Grant `code` names, read and locked once per exchange (None if there is none)."""
        grant = getattr(request, "smart_grant", None)
        if grant is None or grant.code != code:
            grant = request.smart_grant = locked_grant(code)
        return grant

    def get_code_challenge(self, code, request):
        return self._locked_grant(code, request).code_challenge or None

    def get_code_challenge_method(self, code, request):
        return self._locked_grant(code, request).code_challenge_method or None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        """RFC 6749 §5.2 names a redirect URI that differs from the authorization request's
        `invalid_grant` (oauthlib would answer `invalid_request`)."""
        request = kwargs.get("request") or (args[0] if args else None)
        if not self._locked_grant(code, request).redirect_uri_allowed(redirect_uri):
            raise errors.InvalidGrantError(
                description="redirect_uri differs from the authorization request", request=request
            )
        return True

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Delete the Grant but remember the code was redeemed, and for which token."""
        grant = self._locked_grant(code, request)
        access_token = getattr(request, "smart_access_token", None)
        if not consume_grant(grant, request.smart_context, access_token):
            raise errors.InvalidGrantError(request=request)

    # --- Refresh ------------------------------------------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        """DOT's checks (rotation, reuse protection), then the authorization's context.

        A live refresh token is read once, locked, with its user, app and access token
        (`redemption.py`), and checked here as DOT checks one. DOT's own method handles an
        unknown or revoked one: it decides the grace period and revokes the family on reuse.
        An online_access refresh token is refused once the login session that approved it
        has ended (logout, expiry, or a new login).
        """
        live = live_refresh_token(refresh_token)
        if live is None:
            valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        else:
            valid = _accept_live_refresh_token(live, refresh_token, client, request)
        if not valid:
            return False
        family = request.refresh_token_instance.token_family
        context = LaunchContext.objects.filter(family=family).first() if family else None
        if context is None or not request.user.is_active:
            return False
        if context.refresh_access == LaunchContext.ACCESS_ONLINE and not _session_alive(context):
            RefreshToken.revoke_family(family)
            return False
        request.smart_context = context
        request.smart_locked_refresh_token = live
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        """The refreshed token's scopes, minus any the app is no longer registered for."""
        original = super().get_original_scopes(refresh_token, request, *args, **kwargs)
        return filter_registered(original, request.client.scope_list)

    # --- Issuing tokens -----------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs):
        """DOT's, without its own transaction when one is open or none is needed.

        SmartTokenView runs a code or refresh exchange in one transaction already, and DOT's
        savepoint inside it would add two statements. Nothing in `_save_bearer_token` raises an
        OAuth error after it has written, so there is nothing partial to roll back. A backend
        service's token is a single INSERT (no refresh token to rotate or revoke), so it needs
        no transaction at all.
        """
        if transaction.get_connection(router.db_for_write(AccessToken)).in_atomic_block or (
            request.grant_type == "client_credentials" and "refresh_token" not in token
        ):
            return self._save_bearer_token(token, request, *args, **kwargs)
        return super().save_bearer_token(token, request, *args, **kwargs)

    def _save_bearer_token(self, token, request, *args, **kwargs):
        """Add the SMART response fields; keep a refresh token only with offline/online access."""
        context = getattr(request, "smart_context", None)
        refreshable = has_refresh_access(token["scope"])
        if not refreshable:
            token.pop("refresh_token", None)
        if context is not None:
            token.update(token_response_fields(context, token["scope"]))
        if self._rotates_locked_refresh_token(token, request):
            self._rotate_refresh_token(token, request)
        else:
            super()._save_bearer_token(token, request, *args, **kwargs)
        previous = getattr(request, "refresh_token_instance", None)
        if not refreshable and previous is not None:
            # No successor is issued, so the presented refresh token ends here; only now,
            # once DOT's checks (which may still refuse the request) have passed.
            previous.revoke()
            request.refresh_token_instance = None

    def _rotates_locked_refresh_token(self, token, request):
        previous = getattr(request, "refresh_token_instance", None)
        return (
            previous is not None
            and previous is getattr(request, "smart_locked_refresh_token", None)
            and "refresh_token" in token
            and self.rotate_refresh_token(request)
        )

    def _rotate_refresh_token(self, token, request):
        """DOT's rotation of a live refresh token (`_save_bearer_token`), for the one that
        validate_refresh_token read and locked: retire it and its access token, then issue the
        new pair. DOT would lock and read both rows again first."""
        self._check_and_set_request_resource(request)
        previous = request.refresh_token_instance
        lifetime = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        expires = timezone.now() + timedelta(seconds=lifetime)
        retire_refresh_token(previous, request.smart_context)
        request.refresh_token_instance = None
        access_token = self._create_access_token(
            expires, request, token, source_refresh_token=previous
        )
        self._create_refresh_token(request, token["refresh_token"], access_token, previous)

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        """DOT's, but linking the IDToken row `finalize_id_token` just saved, instead of
        verifying the id_token it just signed and looking the row up again (two queries)."""
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=getattr(request, "id_token", None) if token.get("id_token") else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        if request.user is not None:
            audit.note_token_user(request.user)
        if request.grant_type == "authorization_code":
            request.smart_access_token = access_token
        return access_token

    def _create_refresh_token(
        self, request, refresh_token_code, access_token, previous_refresh_token
    ):
        """DOT's, except that a new chain's family is the authorization's (for revocation)."""
        if previous_refresh_token is not None:
            family = previous_refresh_token.token_family
        else:
            family = request.smart_context.family
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=family,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    # --- OpenID Connect -----------------------------------------------------------------

    def get_oidc_issuer_endpoint(self, request):
        return get_issuer()

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = getattr(request, "smart_grant", None)
        if grant is not None and grant.code == code:
            return grant.nonce or None
        return super().get_authorization_code_nonce(client_id, code, redirect_uri, request)

    def finalize_id_token(self, id_token, token, token_handler, request):
        """Sign the id_token RS256 with the server's key (pyjwt, key parsed once per process),
        and keep DOT's IDToken row. Same claims and header as DOT's own version."""
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        signed = default_token_signer.sign(dict(id_token))
        row = self._save_id_token(id_token["jti"], request, expiration_time)  # one INSERT
        request.access_token = row
        request.id_token = row
        return signed

    def get_additional_claims(self, request):
        """`fhirUser` as an absolute URL (SMART), and name claims for `profile`."""
        claims = {}
        context = getattr(request, "smart_context", None)
        if context is not None and context.fhir_user:
            claims["fhirUser"] = f"{get_fhir_base()}/{context.fhir_user}"
        user = request.user
        full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
        claims["name"] = full_name or user.get_username()
        claims["preferred_username"] = user.get_username()
        if getattr(user, "first_name", ""):
            claims["given_name"] = user.first_name
        if getattr(user, "last_name", ""):
            claims["family_name"] = user.last_name
        return claims


def _assertion_of(request):
    """(client_assertion_type, client_assertion) of a request's body, or None without them."""
    body = dict(request.decoded_body or [])
    if "client_assertion" not in body and "client_assertion_type" not in body:
        return None
    return body.get("client_assertion_type", ""), body.get("client_assertion", "")


def _method_of(client):
    return client.token_endpoint_auth_method if client.is_confidential else SmartApp.AUTH_NONE


def _uses_secret(client):
    return _method_of(client) in SECRET_METHODS


def _not_by_secret(client):
    if _method_of(client) == SmartApp.AUTH_NONE:
        return f"public client {client.client_id} does not authenticate: send no client secret"
    return (
        f"client {client.client_id} authenticates with private_key_jwt: send a "
        "client_assertion, not a client secret"
    )


def _backend_scopes(requested, registered, request):
    requested = [scope for scope in requested if scope]  # oauthlib splits "" into [""]
    if not requested:
        raise errors.InvalidScopeError(description="scope is required", request=request)
    granted = [
        scope for scope in filter_registered(requested, registered) if scope.startswith("system/")
    ]
    if not granted:
        raise errors.InvalidScopeError(
            description="none of the requested scopes is a system/ scope this client is "
            "registered for",
            request=request,
        )
    return granted


def _accept_live_refresh_token(refresh_token, value, client, request):
    """DOT's checks of an unrevoked refresh token (validate_refresh_token), on the row
    `redemption.live_refresh_token` read: it must still have its access token, not be past
    REFRESH_TOKEN_EXPIRE_SECONDS after that token's expiry, and belong to `client`."""
    access_token = refresh_token.access_token
    if access_token is None:
        return False
    lifetime = refresh_token_expire_timedelta()
    if lifetime and access_token.expires + lifetime <= timezone.now():
        return False
    request.user = refresh_token.user
    request.refresh_token = value
    request.refresh_token_instance = refresh_token
    return refresh_token.application_id == client.pk


def _session_alive(context):
    """True while the login session that approved the authorization is still logged in."""
    if not context.session_key:
        return False
    engine = import_module(settings.SESSION_ENGINE)
    data = engine.SessionStore(session_key=context.session_key).load()
    return str(data.get("_auth_user_id")) == str(context.user_id)
