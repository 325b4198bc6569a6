"""What a person has granted to apps, and revoking it: the "Connected apps" functions.

Revocation deletes access tokens (the FHIR API checks that the row of a presented token still
exists) and marks refresh tokens revoked, so a revoked app can neither read nor refresh.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)

from . import audit
from .models import LaunchContext, RememberedApproval

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
SmartApp = get_application_model()


@dataclass(frozen=True)
class ConnectedApp:
    """One app a person has let in: what it may do and since when."""

    application: SmartApp
    scopes: tuple
    since: datetime
    has_refresh_token: bool


def get_connected_apps(user):
    """Apps with a live token or a remembered approval from `user`, newest first, each with
    its scopes in the order the app asked for them (as the consent page showed them)."""
    now = timezone.now()
    by_app = {}
    tokens = (
        AccessToken.objects.filter(user=user, expires__gt=now)
        .select_related("application")
        .only("scope", "created", "application")
        .order_by("created", "pk")
    )
    for token in tokens:
        entry = by_app.setdefault(token.application_id, [token.application, {}, token.created])
        entry[1].update(dict.fromkeys(token.scope.split()))
        entry[2] = min(entry[2], token.created)
    approvals = RememberedApproval.objects.filter(user=user).select_related("application")
    for approval in approvals:
        entry = by_app.setdefault(
            approval.application_id, [approval.application, {}, approval.created]
        )
        entry[1].update(dict.fromkeys(approval.granted_scopes.split()))
        entry[2] = min(entry[2], approval.created)
    refreshable = set(
        RefreshToken.objects.filter(user=user, revoked__isnull=True).values_list(
            "application_id", flat=True
        )
    )
    for app_id in refreshable - set(by_app):
        app = SmartApp.objects.get(pk=app_id)
        by_app[app_id] = [app, {}, app.created]
    apps = [
        ConnectedApp(app, tuple(scopes), since, app_id in refreshable)
        for app_id, (app, scopes, since) in by_app.items()
    ]
    return sorted(apps, key=lambda entry: entry.since, reverse=True)


@transaction.atomic
def do_revoke_app_access(user, application):
    """Everything `user` granted `application`: tokens, pending codes, remembered approvals."""
    now = timezone.now()
    RefreshToken.objects.filter(user=user, application=application, revoked__isnull=True).update(
        revoked=now, updated=now
    )
    AccessToken.objects.filter(user=user, application=application).delete()
    Grant.objects.filter(user=user, application=application).delete()
    RememberedApproval.objects.filter(user=user, application=application).delete()
    audit.record_consent("D", user, application.client_id, app_name=application.name)


@transaction.atomic
def do_revoke_app_tokens(application):
    """Every token and pending code of `application` (deactivated or compromised app)."""
    now = timezone.now()
    RefreshToken.objects.filter(application=application, revoked__isnull=True).update(
        revoked=now, updated=now
    )
    AccessToken.objects.filter(application=application).delete()
    Grant.objects.filter(application=application).delete()
    audit.record_tokens_revoked(application, "Every token and code of the app was revoked")


def do_revoke_authorization(context):
    """Every token issued from one authorization (its code and the refresh chain after it).

    Called when a used code is presented again (RFC 6749 §4.1.2: the server SHOULD revoke the
    tokens already issued from it).
    """
    with transaction.atomic():
        RefreshToken.revoke_family(context.family)
        if context.access_token_id:
            AccessToken.objects.filter(pk=context.access_token_id).delete()
        LaunchContext.objects.filter(pk=context.pk).update(access_token=None)
    audit.record_tokens_revoked(
        context.application,
        "An authorization code was presented again: the tokens issued from it were revoked",
        user=context.user,
        patient=context.patient or None,
        alert=True,
    )
