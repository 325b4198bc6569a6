"""Redeeming a code or a refresh token: reading and consuming the row, in as few statements as
its guarantees allow.

Both exchanges run in SmartTokenView's transaction. The row being redeemed (the Grant, or the
live RefreshToken) is read once, locked FOR UPDATE, together with everything the exchange needs
from beside it: the user, the app, the LaunchContext, the paired access token. A second request
with the same code or refresh token waits on that lock, then finds the Grant gone or the refresh
token revoked. That is the single-use guarantee, and it holds on PostgreSQL and on SQLite, where
a write transaction excludes every other.

django-oauth-toolkit reads each of these rows two or three times and lets Django's delete
collector look for references it could have been told about. A profile of a refresh showed 25
statements; a code exchange showed 19. These functions do the same work in about half as many.
SmartValidator calls them from the hooks DOT and oauthlib provide.
"""

import hashlib

from django.db import connections, router
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
)

from .models import LaunchContext

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()


def locked_grant(code):
    """The Grant `code` names, locked, with its user and LaunchContext (`smart_context`).

    None if no Grant has this code: it was never issued, or it has been redeemed already.
    """
    return (
        Grant.objects.select_for_update(of=("self",))
        .select_related("user", "smart_context")
        .filter(code=code)
        .first()
    )


def consume_grant(grant, context, access_token):
    """Delete a redeemed Grant. Its LaunchContext keeps when it was redeemed and the access
    token it bought, so that a replay of the code can revoke that token. Returns False if the
    Grant was already gone."""
    LaunchContext.objects.filter(pk=context.pk).update(
        redeemed_at=timezone.now(), grant=None, access_token=access_token
    )
    # The LaunchContext was its only referrer (GRANT_REFERRERS), and it points elsewhere now.
    return delete_row(Grant, grant.pk) == 1


def live_refresh_token(value):
    """The unrevoked RefreshToken `value` names, locked, with its user, app and access token.

    None for an unknown or revoked one. DOT's validate_refresh_token applies its rules to
    those: the grace period, and revoking the family when a rotated token is reused.
    """
    checksum = hashlib.sha256(value.encode()).hexdigest()
    return (
        RefreshToken.objects.select_for_update(of=("self",))
        .select_related("user", "application", "access_token")
        .filter(token_checksum=checksum, revoked__isnull=True)
        .first()
    )


def retire_refresh_token(refresh_token, context):
    """Revoke a rotated refresh token, and delete the access token it was paired with.

    This is what DOT's RefreshToken.revoke() does, without reading the locked row again. The
    only other reference to the access token can come from this authorization's
    LaunchContext, when the access token is the one the code was exchanged for.
    """
    now = timezone.now()
    paired = refresh_token.access_token_id
    RefreshToken.objects.filter(pk=refresh_token.pk).update(
        revoked=now, updated=now, access_token=None
    )
    refresh_token.revoked = now
    refresh_token.access_token = None
    if paired is None:
        return
    if context is not None and context.access_token_id == paired:
        LaunchContext.objects.filter(pk=context.pk).update(access_token=None)
        context.access_token = None
    delete_row(AccessToken, paired)


# What refers to the rows deleted by delete_row (the model and its foreign key). A test keeps
# these lists equal to the models' actual relations, so a new reference cannot be missed here.
GRANT_REFERRERS = {(LaunchContext, "grant")}
ACCESS_TOKEN_REFERRERS = {(RefreshToken, "access_token"), (LaunchContext, "access_token")}


def delete_row(model, pk):
    """DELETE one row by primary key, and return how many rows went (0 or 1).

    This skips Django's collector, which would re-select the row and clear each reference to
    it. The callers above have cleared those references themselves.
    """
    connection = connections[router.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [pk])  # noqa: S608
        return cursor.rowcount
