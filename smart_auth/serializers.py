"""The client registry's JSON shape (camelCase, as the API contract shows)."""

from urllib.parse import urlsplit

from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AbstractApplication, get_application_model
from oauth2_provider.settings import oauth2_settings
from rest_framework import serializers

from .grants import do_revoke_app_tokens
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


class SmartAppSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    clientId = serializers.CharField(source="client_id", read_only=True)
    redirectUris = SpaceSeparatedListField(
        source="redirect_uris", child=serializers.CharField(max_length=2000), allow_empty=False
    )
    scopes = SpaceSeparatedListField(child=serializers.CharField(max_length=500), allow_empty=False)
    isConfidential = serializers.BooleanField(source="is_confidential", default=True)
    launchUri = serializers.URLField(
        source="launch_uri", required=False, allow_blank=True, max_length=2000
    )
    active = serializers.BooleanField(source="is_active", required=False)

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
            authorization_grant_type=AbstractApplication.GRANT_AUTHORIZATION_CODE,
        )
        secret = set_new_secret(app) if confidential else clear_secret(app)
        app.save()
        app.plaintext_secret = secret
        return app

    @transaction.atomic
    def update(self, instance, validated_data):
        validated_data.pop("is_confidential", None)
        was_active = instance.is_active
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save()
        if was_active and not instance.is_active:
            do_revoke_app_tokens(instance)
        return instance


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
