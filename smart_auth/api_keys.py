"""Admin API keys for the client registry, sent as `X-API-Key: <prefix>.<secret>`.

A key is random (256 bits), shown once when created, and stored as its prefix (to find the row)
plus a SHA-256 of the whole key: like client secrets, a high-entropy key needs no slow hash.
"""

import hashlib
import secrets

from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .models import ApiKey


def _digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def set_new_key(row):
    """Give the (unsaved) ApiKey `row` a new key; returns the key, which is never stored."""
    row.prefix = secrets.token_hex(6)
    key = f"{row.prefix}.{secrets.token_urlsafe(32)}"
    row.key_hash = _digest(key)
    return key


def do_create_api_key(name, user):
    """(ApiKey row, the key itself). The key is not stored and cannot be shown again."""
    row = ApiKey(name=name, user=user)
    key = set_new_key(row)
    row.save()
    return row, key


def access_api_key(key):
    """The active ApiKey row for `key` (with its user loaded), or None."""
    prefix, sep, _secret = (key or "").partition(".")
    if not sep or len(prefix) != 12:
        return None
    row = ApiKey.objects.select_related("user").filter(prefix=prefix, is_active=True).first()
    if row is None or not constant_time_compare(row.key_hash, _digest(key)):
        return None
    ApiKey.objects.filter(pk=row.pk).update(last_used=timezone.now())
    return row
