"""The client registry's JSON shape (camelCase, as the API contract shows).

How an app authenticates (`tokenEndpointAuthMethod`, `jwks`/`jwksUri`) and which grants it
uses (`grantTypes`) follow the rules in `registration.py`, shared with Django admin.
"""

from urllib.parse import urlsplit

from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AbstractApplication, get_application_model
from oauth2_provider.settings import oauth2_settings
from rest_framework import serializers

from . import jwks
from .grants import do_revoke_app_tokens
from .registration import SECRET_METHODS, check_client_auth, default_method, dot_grant_type
from .scopes import is_valid_scope

SmartApp = get_application_model()


def check_redirect_uri(uri):
    """Error message for a redirect URI that cannot be registered, else None.

    Absolute, with an allowed scheme (https; http only where configured), no fragment and no
    wildcard: redirect URIs are matched exactly.
    """
    parts = urlsplit(uri)
    if parts.scheme not in oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES:
        allowed = ", ".join(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)
        return f"{uri}: the scheme must be one of {allowed}"
    if not parts.netloc or "*" in parts.netloc:
        return f"{uri}: an absolute URI with a host is required"
    if parts.fragment or "#" in uri:
        return f"{uri}: a redirect URI may not have a fragment"
    if any(c.isspace() for c in uri):
        return f"{uri}: a redirect URI may not contain spaces"
    return None


class SpaceSeparatedListField(serializers.ListField):
    """A JSON list stored as DOT's space-separated text."""

    def to_representation(self, value):
        return value.split() if isinstance(value, str) else list(value)

    def to_internal_value(self, data):
        return " ".join(super().to_internal_value(data))


# Model field names as the API spells them, for errors found on the model's terms.
API_NAMES = {
    "redirect_uris": "redirectUris",
    "grant_types": "grantTypes",
    "token_endpoint_auth_method": "tokenEndpointAuthMethod",
    "jwks_uri": "jwksUri",
}


class SmartAppSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    clientId = serializers.CharField(source="client_id", read_only=True)
    # A backend service (client_credentials only) has none; `validate` asks for one otherwise.
    redirectUris = SpaceSeparatedListField(
        source="redirect_uris",
        child=serializers.CharField(max_length=2000),
        required=False,
        allow_empty=True,
    )
    scopes = SpaceSeparatedListField(child=serializers.CharField(max_length=500), allow_empty=False)
    isConfidential = serializers.BooleanField(source="is_confidential", default=True)
    launchUri = serializers.URLField(
        source="launch_uri", required=False, allow_blank=True, max_length=2000
    )
    active = serializers.BooleanField(source="is_active", required=False)
    grantTypes = SpaceSeparatedListField(
        source="grant_types",
        child=serializers.ChoiceField(choices=SmartApp.GRANT_TYPES),
        required=False,
        allow_empty=False,
    )
    # Defaults to client_secret_basic for a confidential app, none for a public one.
    tokenEndpointAuthMethod = serializers.ChoiceField(
        source="token_endpoint_auth_method", choices=SmartApp.AUTH_METHODS, required=False
    )
    jwks = serializers.JSONField(required=False, allow_null=True)
    jwksUri = serializers.CharField(
        source="jwks_uri", required=False, allow_blank=True, max_length=2000
    )

    class Meta:
        model = SmartApp
        fields = [
            "id",
            "clientId",
            "name",
            "redirectUris",
            "scopes",
            "isConfidential",
            "launchUri",
            "active",
            "grantTypes",
            "tokenEndpointAuthMethod",
            "jwks",
            "jwksUri",
        ]
        extra_kwargs = {"name": {"required": True, "allow_blank": False}}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        secret = getattr(instance, "plaintext_secret", None)
        if secret:
            data["clientSecret"] = secret
        return data

    def validate_redirectUris(self, value):
        errors = [message for uri in value.split() if (message := check_redirect_uri(uri))]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_scopes(self, value):
        invalid = [scope for scope in value.split() if not is_valid_scope(scope)]
        if invalid:
            raise serializers.ValidationError([f"Not a supported scope: {s}" for s in invalid])
        return " ".join(dict.fromkeys(value.split()))

    def validate_grantTypes(self, value):
        return " ".join(dict.fromkeys(value.split()))

    def validate(self, attrs):
        """The client authentication rules (registration.py) on the app as it would be saved.

        Naming one of jwks/jwksUri clears the other, and an app that leaves private_key_jwt
        drops its keys, so a change needs no explicit clearing.
        """
        current = self.instance
        confidential = attrs.get(
            "is_confidential", current.is_confidential if current is not None else True
        )
        if "token_endpoint_auth_method" not in attrs:
            attrs["token_endpoint_auth_method"] = (
                current.token_endpoint_auth_method
                if current is not None
                else default_method(confidential)
            )
        method = attrs["token_endpoint_auth_method"]
        _settle_keys(attrs, current, method)
        app = {name: attrs.get(name, getattr(current, name, None)) for name in _AUTH_FIELDS}
        grant_types = (app["grant_types"] or "authorization_code").split()
        errors = check_client_auth(
            confidential=confidential,
            method=method,
            grant_types=grant_types,
            jwks_document=app["jwks"],
            jwks_uri=app["jwks_uri"] or "",
            scopes=(app["scopes"] or "").split(),
            redirect_uris=(app["redirect_uris"] or "").split(),
        )
        if errors:
            raise serializers.ValidationError(
                {API_NAMES.get(field, field): messages for field, messages in errors.items()}
            )
        attrs["authorization_grant_type"] = dot_grant_type(grant_types)
        return attrs

    def validate_isConfidential(self, value):
        if self.instance is not None and value != self.instance.is_confidential:
            raise serializers.ValidationError(
                "An app cannot change between public and confidential; register a new one"
            )
        return value

    @transaction.atomic
    def create(self, validated_data):
        confidential = validated_data.pop("is_confidential", True)
        app = SmartApp(
            **validated_data,
            client_type=(
                AbstractApplication.CLIENT_CONFIDENTIAL
                if confidential
                else AbstractApplication.CLIENT_PUBLIC
            ),
        )
        app.plaintext_secret = set_credentials(app)
        app.save()
        return app

    @transaction.atomic
    def update(self, instance, validated_data):
        validated_data.pop("is_confidential", None)
        was_active = instance.is_active
        previous_method, previous_uri = instance.token_endpoint_auth_method, instance.jwks_uri
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.plaintext_secret = set_credentials(instance, previous_method)
        instance.save()
        # New keys take effect at once: forget whatever was fetched from either URL.
        jwks.forget(previous_uri)
        jwks.forget(instance.jwks_uri)
        if was_active and not instance.is_active:
            do_revoke_app_tokens(instance)
        return instance


_AUTH_FIELDS = ("grant_types", "jwks", "jwks_uri", "scopes", "redirect_uris")


def _settle_keys(attrs, current, method):
    """Naming one key source clears the other; an app off private_key_jwt keeps no keys."""
    if attrs.get("jwks") and "jwks_uri" not in attrs:
        attrs["jwks_uri"] = ""
    if attrs.get("jwks_uri") and "jwks" not in attrs:
        attrs["jwks"] = None
    named = "jwks" in attrs or "jwks_uri" in attrs
    if method != SmartApp.AUTH_PRIVATE_KEY_JWT and current is not None and not named:
        attrs["jwks"], attrs["jwks_uri"] = None, ""


def set_credentials(app, previous_method=None):
    """Give `app` the secret its method needs; returns a new plaintext secret to show once.

    none: no secret. private_key_jwt: a random hashed secret that is never shown, so no
    secret can ever authenticate the app. A secret method: a new secret when the app had
    none before (new, or coming from another method); an existing one is kept.
    """
    method = app.token_endpoint_auth_method
    if method == SmartApp.AUTH_NONE:
        return clear_secret(app)
    if method == SmartApp.AUTH_PRIVATE_KEY_JWT:
        if previous_method != SmartApp.AUTH_PRIVATE_KEY_JWT:
            set_new_secret(app)
        return None
    if previous_method in SECRET_METHODS:
        return None
    return set_new_secret(app)


def set_new_secret(app):
    """Give `app` a new random secret (hashed when saved); returns the plaintext, shown once."""
    secret = generate_client_secret()
    app.client_secret = secret
    app.hash_client_secret = True
    return secret


def clear_secret(app):
    """A public app has no secret at all (DOT would otherwise generate and hash one)."""
    app.client_secret = ""
    app.hash_client_secret = False
    return None


class AdminLoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
