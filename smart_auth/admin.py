"""Django admin: the client registry console until a real one exists.

`SmartAppAdmin` is registered by django-oauth-toolkit itself (OAUTH2_PROVIDER
["APPLICATION_ADMIN_CLASS"]), so it is defined but not registered here. DOT's own admins list the
grants and tokens, with revoke actions.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.html import format_html
from oauth2_provider.models import AbstractApplication

from .api_keys import set_new_key
from .grants import do_revoke_app_tokens
from .models import ApiKey, FhirUser, LaunchContext, RememberedApproval, SigningKey
from .scopes import is_valid_scope
from .serializers import check_redirect_uri, clear_secret, set_new_secret


@admin.register(FhirUser)
class FhirUserAdmin(admin.ModelAdmin):
    list_display = ["user", "resource_type", "fhir_id"]
    search_fields = ["user__username", "fhir_id"]


class SmartAppForm(forms.ModelForm):
    launch_uri = forms.URLField(
        required=False, max_length=2000, assume_scheme="https", label="Launch URI"
    )
    authorization_grant_type = forms.ChoiceField(
        choices=[(AbstractApplication.GRANT_AUTHORIZATION_CODE, "Authorization code (+ refresh)")],
        initial=AbstractApplication.GRANT_AUTHORIZATION_CODE,
        label="Grant types",
    )

    class Meta:
        fields = [
            "name",
            "client_type",
            "redirect_uris",
            "launch_uri",
            "scopes",
            "authorization_grant_type",
            "allowed_origins",
            "is_active",
        ]
        widgets = {
            "redirect_uris": forms.Textarea(attrs={"rows": 3}),
            "scopes": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_redirect_uris(self):
        uris = self.cleaned_data["redirect_uris"].split()
        if not uris:
            raise forms.ValidationError("At least one redirect URI is required")
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


class SmartAppAdmin(admin.ModelAdmin):
    """Apps: the secret is shown once, when the app is created and when it is rotated."""

    form = SmartAppForm
    list_display = ["name", "client_id", "client_type", "is_active", "created"]
    list_filter = ["client_type", "is_active"]
    search_fields = ["name", "client_id"]
    readonly_fields = ["client_id", "created", "updated"]
    actions = ["rotate_secret", "revoke_tokens"]

    def get_fields(self, request, obj=None):
        fields = list(self.form.Meta.fields)
        return ["client_id", *fields] if obj is not None else fields

    def save_model(self, request, obj, form, change):
        was_active = form.initial.get("is_active", True) if change else True
        secret = None
        if not change or "client_type" in form.changed_data:
            secret = set_new_secret(obj) if obj.is_confidential else clear_secret(obj)
        super().save_model(request, obj, form, change)
        if secret:
            self._show_secret(request, obj, secret)
        if was_active and not obj.is_active:
            do_revoke_app_tokens(obj)
            messages.info(request, f"{obj}: deactivated and every token revoked.")

    @admin.action(description="Rotate client secret (shows the new secret once)")
    def rotate_secret(self, request, queryset):
        for app in queryset:
            if not app.is_confidential:
                messages.warning(request, f"{app}: a public app has no secret.")
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
