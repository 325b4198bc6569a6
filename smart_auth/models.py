"""The SMART authorization server's data.

`SmartApp` is django-oauth-toolkit's swapped Application model (OAUTH2_PROVIDER_APPLICATION_MODEL),
so DOT's own hooks (`is_usable`, `jwk_key`) see our fields. DOT's Grant, AccessToken and
RefreshToken stay as they are; what SMART adds to them lives in side tables keyed to them:
`LaunchContext` (one per authorization: patient, encounter, who, which session), `LaunchHandle`
(EHR launches), `RememberedApproval`, plus our `SigningKey` and `ApiKey` tables.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from oauth2_provider.models import AbstractApplication


class FhirUser(models.Model):
    """Links a Django user to the Practitioner, Patient or other resource that is that person.

    SMART puts this reference in the `fhirUser` claim, and a patient user's own Patient is the
    patient in context of the tokens they approve.
    """

    RESOURCE_TYPES = ["Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fhir_user"
    )
    resource_type = models.CharField(
        max_length=32, choices=[(name, name) for name in RESOURCE_TYPES]
    )
    fhir_id = models.CharField(max_length=64)

    class Meta:
        verbose_name = "FHIR user link"

    def __str__(self):
        return self.reference

    @property
    def reference(self):
        return f"{self.resource_type}/{self.fhir_id}"


class SmartApp(AbstractApplication):
    """A registered SMART app: DOT's Application plus launch URI, allowed scopes, active flag,
    the grant types it may use, how it authenticates at the token endpoint, and its rate limits.

    DOT's `authorization_grant_type` holds one grant type; a SMART app may need several
    (a confidential app that also runs as a backend service), so `grant_types` lists them and
    `allows_grant_type` reads it. Every app signs its id_tokens RS256 with the server's key
    (see `jwk_key`), so `algorithm` defaults to RS256 instead of DOT's "no OIDC".
    """

    GRANT_TYPES = ["authorization_code", "client_credentials"]
    AUTH_NONE = "none"
    AUTH_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name)
    AUTH_SECRET_POST = "client_secret_post"  # noqa: S105
    AUTH_PRIVATE_KEY_JWT = "private_key_jwt"
    AUTH_METHODS = [AUTH_NONE, AUTH_SECRET_BASIC, AUTH_SECRET_POST, AUTH_PRIVATE_KEY_JWT]

    launch_uri = models.URLField(
        max_length=2000, blank=True, help_text="Where an EHR launch opens the app"
    )
    scopes = models.TextField(
        blank=True,
        help_text="Scopes the app may be granted, space separated; others are dropped",
    )
    is_active = models.BooleanField(
        default=True, help_text="An inactive app gets no codes or tokens, and its tokens stop"
    )
    algorithm = models.CharField(
        max_length=5,
        choices=AbstractApplication.ALGORITHM_TYPES,
        default=AbstractApplication.RS256_ALGORITHM,
        blank=True,
    )
    grant_types = models.CharField(
        max_length=100,
        default="authorization_code",
        help_text="Grant types the app may use, space separated: "
        "authorization_code, client_credentials (backend services)",
    )
    token_endpoint_auth_method = models.CharField(
        max_length=32,
        choices=[(method, method) for method in AUTH_METHODS],
        default=AUTH_SECRET_BASIC,
        help_text="none for public apps; a client secret, or private_key_jwt with registered keys",
    )
    jwks = models.JSONField(
        null=True, blank=True, help_text='The app\'s public keys, {"keys": [...]} (private_key_jwt)'
    )
    jwks_uri = models.URLField(
        max_length=2000, blank=True, help_text="Where the app publishes its public keys"
    )
    token_rate_limit = models.CharField(
        max_length=20,
        blank=True,
        help_text="Token requests allowed, e.g. 600/min; blank for the server default",
    )
    api_rate_limit = models.CharField(
        max_length=20,
        blank=True,
        help_text="FHIR API requests allowed, e.g. 6000/min; blank for the server default",
    )

    class Meta:
        verbose_name = "SMART app"
        verbose_name_plural = "SMART apps"

    @property
    def grant_type_list(self):
        return self.grant_types.split()

    def allows_grant_type(self, *grant_types):
        """DOT asks this with its own names of the grant types that permit a request
        ("authorization-code"); `grant_types` holds the OAuth names ("authorization_code")."""
        allowed = self.grant_type_list
        return any(grant_type.replace("-", "_") in allowed for grant_type in grant_types)

    @property
    def scope_list(self):
        return self.scopes.split()

    @property
    def redirect_uri_list(self):
        return self.redirect_uris.split()

    @property
    def is_confidential(self):
        return self.client_type == AbstractApplication.CLIENT_CONFIDENTIAL

    def is_usable(self, request):
        """DOT asks this before every code or token, and for every bearer token it checks."""
        return self.is_active

    @property
    def jwk_key(self):
        """The server's current signing key (DOT reads OIDC_RSA_PRIVATE_KEY otherwise)."""
        from .keys import get_active_jwk

        return get_active_jwk()

    def clean(self):
        """DOT's checks, minus its demand for OIDC_RSA_PRIVATE_KEY: our keys are in the DB."""
        try:
            super().clean()
        except ValidationError as error:
            remaining = {
                field: messages
                for field, messages in error.message_dict.items()
                if not (field == "algorithm" and all("OIDC_RSA" in m for m in messages))
            }
            if remaining:
                raise ValidationError(remaining) from None


class LaunchContext(models.Model):
    """What one authorization decided, shared by its code and every token it leads to.

    Created with the Grant when the person approves; the code exchange and each refresh read it
    to put the same context in the new tokens. `family` is also the token family of the refresh
    tokens, so a reused code or a replayed refresh token revokes everything issued from it.
    """

    ACCESS_OFFLINE = "offline"
    ACCESS_ONLINE = "online"
    ACCESS_NONE = ""

    family = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    grant = models.OneToOneField(
        settings.OAUTH2_PROVIDER_GRANT_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="smart_context",
    )
    # SHA-256 of the code: after redemption the Grant row is gone and this detects a replay.
    code_checksum = models.CharField(max_length=64, unique=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    # The access token the code was exchanged for (later ones come from refresh tokens).
    access_token = models.OneToOneField(
        settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    patient = models.CharField(max_length=64, blank=True)
    encounter = models.CharField(max_length=64, blank=True)
    fhir_context = models.JSONField(default=list, blank=True)
    fhir_user = models.CharField(max_length=128, blank=True)
    need_patient_banner = models.BooleanField(default=True)
    # online_access refresh tokens live only as long as this login session.
    refresh_access = models.CharField(max_length=8, blank=True)
    session_key = models.CharField(max_length=40, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Authorization {self.family}"


class LaunchHandle(models.Model):
    """An EHR launch: the opaque `launch` value the EHR gives the app, bound to its app, and to
    the person who launched it when a person did (an EHR calling POST /smart/launch names none).

    Only the SHA-256 of the handle is stored. It is single-use and expires within minutes.
    """

    checksum = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    patient = models.CharField(max_length=64, blank=True)
    encounter = models.CharField(max_length=64, blank=True)
    fhir_context = models.JSONField(default=list, blank=True)
    need_patient_banner = models.BooleanField(default=True)
    expires = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Launch #{self.pk}"


class UsedAssertion(models.Model):
    """A client assertion (private_key_jwt) already presented: its `jti` may not come again.

    RFC 7523 §3 and SMART Backend Services: a `jti` is refused while its assertion could still
    be valid. A database row with a unique checksum holds across workers and hosts, and cannot
    be evicted early as a cache entry could. Rows past `expires` may be purged.
    """

    # SHA-256 of client id and jti.
    checksum = models.CharField(max_length=64, unique=True)
    expires = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.checksum


class RememberedApproval(models.Model):
    """A person approved these scopes for this app once; the same request is not asked again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    # SHA-256 of the sorted requested scopes: the key of "the same request".
    request_key = models.CharField(max_length=64)
    requested_scopes = models.TextField()
    granted_scopes = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "application", "request_key"], name="approval_per_request"
            )
        ]

    def __str__(self):
        return f"Approval #{self.pk}"


class SigningKey(models.Model):
    """An RS256 key. One is active (signs); retired ones stay in the JWKS until tokens expire.

    `active` is True or NULL, and unique: NULLs never collide, so the database itself keeps
    two workers from both creating an active key at first start.
    """

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    active = models.BooleanField(null=True, default=True, unique=True)
    configured = models.BooleanField(default=False, help_text="From settings, not generated")
    created = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.kid


class ApiKey(models.Model):
    """An admin credential for /smart/apps sent as `X-API-Key`, acting as its staff owner.

    The key is shown once at creation; only its prefix (for lookup) and SHA-256 are stored.
    """

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="A staff user the key acts as",
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
