"""Django admin: the client registry console until a real one exists.

`SmartAppAdmin` is registered by django-oauth-toolkit itself (OAUTH2_PROVIDER
["APPLICATION_ADMIN_CLASS"]), so it is defined but not registered here. DOT's own admins list the
grants and tokens, with revoke actions.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.html import format_html
from oauth2_provider.models import get_application_model

from . import jwks
from .api_keys import set_new_key
from .grants import do_revoke_app_tokens
from .models import ApiKey, FhirUser, LaunchContext, RememberedApproval, SigningKey
from .registration import SECRET_METHODS, check_client_auth, default_method, dot_grant_type
from .scopes import is_valid_scope
from .serializers import check_redirect_uri, set_credentials, set_new_secret

SmartApp = get_application_model()


@admin.register(FhirUser)
class FhirUserAdmin(admin.ModelAdmin):
    list_display = ["user", "resource_type", "fhir_id"]
    search_fields = ["user__username", "fhir_id"]


class SmartAppForm(forms.ModelForm):
    """The registration rules of `registration.py`, as the registry API applies them."""

    launch_uri = forms.URLField(
        required=False, max_length=2000, assume_scheme="https", label="Launch URI"
    )
    grant_types = forms.MultipleChoiceField(
        choices=[
            ("authorization_code", "Authorization code (+ refresh)"),
            ("client_credentials", "Client credentials (backend services, system/ scopes)"),
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Authorization code when none is ticked.",
    )
    token_endpoint_auth_method = forms.ChoiceField(
        choices=[
            ("", "Default: client_secret_basic if confidential, none if public"),
            *[(method, method) for method in SmartApp.AUTH_METHODS],
        ],
        required=False,
        label="Token endpoint authentication",
    )
    jwks = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="JWKS",
        help_text='private_key_jwt: the app\'s public keys, {"keys": [...]}; or a JWKS URL.',
    )
    jwks_uri = forms.CharField(required=False, max_length=2000, label="JWKS URL")

    class Meta:
        fields = [
            "name",
            "client_type",
            "redirect_uris",
            "launch_uri",
            "scopes",
            "grant_types",
            "token_endpoint_auth_method",
            "jwks",
            "jwks_uri",
            "is_active",
        ]
        widgets = {
            "redirect_uris": forms.Textarea(attrs={"rows": 3}),
            "scopes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["grant_types"] = self.instance.grant_type_list

    def clean_redirect_uris(self):
        uris = self.cleaned_data["redirect_uris"].split()
        errors = [message for uri in uris if (message := check_redirect_uri(uri))]
        if errors:
            raise forms.ValidationError(errors)
        return " ".join(uris)

    def clean_scopes(self):
        scopes = self.cleaned_data["scopes"].split()
        invalid = [scope for scope in scopes if not is_valid_scope(scope)]
        if invalid:
            raise forms.ValidationError(f"Not supported: {', '.join(invalid)}")
        return " ".join(dict.fromkeys(scopes))

    def clean_grant_types(self):
        return " ".join(self.cleaned_data["grant_types"] or ["authorization_code"])

    def clean(self):
        cleaned = super().clean()
        if set(self.errors) & {"client_type", "redirect_uris", "scopes", "jwks", "jwks_uri"}:
            return cleaned
        confidential = cleaned.get("client_type") == SmartApp.CLIENT_CONFIDENTIAL
        method = cleaned.get("token_endpoint_auth_method") or default_method(confidential)
        cleaned["token_endpoint_auth_method"] = method
        grant_types = cleaned["grant_types"].split()
        errors = check_client_auth(
            confidential=confidential,
            method=method,
            grant_types=grant_types,
            jwks_document=cleaned.get("jwks"),
            jwks_uri=cleaned.get("jwks_uri", ""),
            scopes=cleaned.get("scopes", "").split(),
            redirect_uris=cleaned.get("redirect_uris", "").split(),
        )
        for field, problems in errors.items():
            self.add_error(field, problems)
        # DOT's own model checks read its single grant type.
        self.instance.authorization_grant_type = dot_grant_type(grant_types)
        return cleaned


class SmartAppAdmin(admin.ModelAdmin):
    """Apps: a secret is shown once, when the app gets one (created, or switched to a secret
    method) and when it is rotated. private_key_jwt apps have no secret to show."""

    form = SmartAppForm
    list_display = [
        "name",
        "client_id",
        "client_type",
        "token_endpoint_auth_method",
        "is_active",
        "created",
    ]
    list_filter = ["client_type", "token_endpoint_auth_method", "is_active"]
    search_fields = ["name", "client_id"]
    readonly_fields = ["client_id", "created", "updated"]
    actions = ["rotate_secret", "revoke_tokens"]

    def get_fields(self, request, obj=None):
        fields = list(self.form.Meta.fields)
        return ["client_id", *fields] if obj is not None else fields

    def save_model(self, request, obj, form, change):
        was_active = form.initial.get("is_active", True) if change else True
        previous_method = form.initial.get("token_endpoint_auth_method") if change else None
        secret = set_credentials(obj, previous_method)
        super().save_model(request, obj, form, change)
        # New keys take effect at once: forget whatever was fetched from either URL.
        jwks.forget(form.initial.get("jwks_uri", ""))
        jwks.forget(obj.jwks_uri)
        if secret:
            self._show_secret(request, obj, secret)
        if was_active and not obj.is_active:
            do_revoke_app_tokens(obj)
            messages.info(request, f"{obj}: deactivated and every token revoked.")

    @admin.action(description="Rotate client secret (shows the new secret once)")
    def rotate_secret(self, request, queryset):
        for app in queryset:
            if not app.is_confidential or app.token_endpoint_auth_method not in SECRET_METHODS:
                messages.warning(
                    request,
                    f"{app}: authenticates with {app.token_endpoint_auth_method}, not a secret.",
                )
                continue
            secret = set_new_secret(app)
            app.save(update_fields=["client_secret", "hash_client_secret", "updated"])
            self._show_secret(request, app, secret)

    @admin.action(description="Revoke every token of the selected apps")
    def revoke_tokens(self, request, queryset):
        for app in queryset:
            do_revoke_app_tokens(app)
        messages.info(request, "Tokens revoked.")

    def _show_secret(self, request, app, secret):
        messages.warning(
            request,
            format_html(
                "Client secret of <strong>{}</strong> (client id <code>{}</code>): "
                "<code>{}</code> — copy it now, it will not be shown again.",
                app,
                app.client_id,
                secret,
            ),
        )


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "user", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.filter(is_staff=True)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Admin API keys for /smart/apps; the key is shown once, when created."""

    form = ApiKeyForm
    list_display = ["name", "prefix", "user", "is_active", "created", "last_used"]
    readonly_fields = ["prefix", "created", "last_used"]

    def save_model(self, request, obj, form, change):
        key = None if change else set_new_key(obj)
        super().save_model(request, obj, form, change)
        if key:
            messages.warning(
                request,
                format_html(
                    "API key <code>{}</code> — copy it now, it will not be shown again.", key
                ),
            )


@admin.register(LaunchContext)
class LaunchContextAdmin(admin.ModelAdmin):
    list_display = ["family", "application", "user", "patient", "created", "redeemed_at"]
    list_filter = ["application"]
    search_fields = ["user__username", "patient"]
    # The login session key is a credential: never shown.
    fields = [f.name for f in LaunchContext._meta.fields if f.name not in ("id", "session_key")]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


@admin.register(RememberedApproval)
class RememberedApprovalAdmin(admin.ModelAdmin):
    list_display = ["user", "application", "granted_scopes", "last_used"]
    search_fields = ["user__username"]


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ["kid", "active", "configured", "created", "retired_at"]
    fields = ["kid", "active", "configured", "created", "retired_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
