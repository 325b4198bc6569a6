"""RS256 signing keys: loading, first-use generation, rotation and the JWKS document.

Keys live in the `SigningKey` table so every worker and host signs with the same key and
verifies every other's tokens. In production the first key comes from configuration
(SMART["SIGNING_KEY_PEM"]); configuring a key never seen before rotates to it. In development
a key is generated on first use. `manage.py rotate_signing_key` rotates at any time.

Rotation retires the active key: it signs nothing more but stays in the JWKS, and verifies the
tokens it signed, for `retention_seconds()` (the longest token lifetime plus leeway); then it
leaves the JWKS and the rotate command erases its private half. A key once retired never
signs again, even if the configuration still names it.

Parsed keys are cached in the process (parsing a PEM costs milliseconds, signing with a parsed
key microseconds). A rotation bumps a version in the shared cache, which every process reads
at most every `VERSION_CHECK_SECONDS` (and when a token names a kid it does not know), so the
new key signs everywhere within seconds; the database is re-read every `REFRESH_SECONDS`
regardless, which also drops keys whose retention has ended.
"""

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from jwcrypto import jwk

from .models import SigningKey

REFRESH_SECONDS = 60
# How often a process asks the shared cache whether the keys changed.
VERSION_CHECK_SECONDS = 5
VERSION_KEY = "smart_auth:signing-keys:version"
# A kid we do not know triggers at most one database read per this many seconds (beyond the
# reload a changed version causes).
UNKNOWN_KID_RELOAD_SECONDS = 5
# Seconds of clock skew a token's `exp` is allowed, added to the retention of retired keys.
RETENTION_LEEWAY = 300


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict
    private_pem: str


class KeyRing:
    """The signing keys known to this process: the active one plus every published one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._active = None
        self._published = {}
        self._loaded_at = 0.0
        self._checked_at = 0.0
        self._version = None
        self._unknown_kid_at = 0.0
        self._uncommitted = set()

    def clear(self):
        with self._lock:
            self._active = None
            self._published = {}
            self._loaded_at = 0.0
            self._checked_at = 0.0
            self._version = None
            self._unknown_kid_at = 0.0
            self._uncommitted = set()

    def active(self):
        """The key that signs new tokens."""
        if self._is_stale(VERSION_CHECK_SECONDS):
            self._reload()
        return self._active

    def verification_key(self, kid):
        """The public key for `kid` if it is published, else None."""
        if self._is_stale(VERSION_CHECK_SECONDS):
            self._reload()
        key = self._published.get(kid)
        if key is None and (self._is_stale(0) or self._may_reload_for_unknown_kid()):
            self._reload()
            key = self._published.get(kid)
        return key.private_key.public_key() if key else None

    def _may_reload_for_unknown_kid(self):
        now = time.monotonic()
        if now - self._unknown_kid_at <= UNKNOWN_KID_RELOAD_SECONDS:
            return False
        self._unknown_kid_at = now
        return True

    def _is_stale(self, check_every):
        """Never loaded, loaded too long ago, or the shared version moved (asked at most once
        per `check_every` seconds: one cache read)."""
        now = time.monotonic()
        if self._active is None or now - self._loaded_at > REFRESH_SECONDS:
            return True
        if now - self._checked_at < check_every:
            return False
        self._checked_at = now
        version = cache.get(VERSION_KEY)
        if version == self._version:
            return False
        self._version = version
        return True

    def jwks(self):
        """The JWKS document: the public half of every published key."""
        self.active()
        return {"keys": [key.public_jwk for key in self._published.values()]}

    def _reload(self):
        active_row, created = ensure_active_key()
        rows = list(get_published_keys())
        published = {row.kid: self._parse(row) for row in rows}
        published.setdefault(active_row.kid, self._parse(active_row))
        active = published[active_row.kid]
        if created and transaction.get_connection().in_atomic_block:
            # Created inside a transaction that may still roll back: remembered only once
            # committed, and until then used by this request alone.
            kid = active.kid
            self._uncommitted.add(kid)

            def committed():
                self._uncommitted.discard(kid)
                self._store(active, published)

            transaction.on_commit(committed)
        if active.kid in self._uncommitted:
            self._active, self._loaded_at = active, 0.0
            self._published = {**self._published, **published}
        else:
            self._store(active, published)

    def _store(self, active, published):
        with self._lock:
            self._active = active
            self._published = published
            self._loaded_at = self._checked_at = time.monotonic()

    def _parse(self, row):
        cached = self._published.get(row.kid)
        if cached is not None and cached.private_pem == row.private_pem:
            return cached
        private_key = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
        return LoadedKey(
            kid=row.kid,
            private_key=private_key,
            public_jwk=public_jwk(row.private_pem, row.kid),
            private_pem=row.private_pem,
        )


def public_jwk(private_pem, kid):
    """The RFC 7517 public JWK of a PEM private key, as published in the JWKS."""
    key = jwk.JWK.from_pem(private_pem.encode())
    public = key.export_public(as_dict=True)
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


def key_id(private_pem):
    """RFC 7638 thumbprint: the same value DOT's id_token signing puts in `kid`."""
    return jwk.JWK.from_pem(private_pem.encode()).thumbprint()


def load_private_pem(pem):
    """The RSA private key in `pem`; ValueError unless it is one of at least 2048 bits."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM private key without a password ({error})") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("the signing key must be an RSA key of at least 2048 bits")
    return key


def generate_private_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def ensure_active_key():
    """(active key row, created?), creating it from configuration or generating it in dev.

    A configured key is installed the first time it is seen, retiring the active key. Once
    known it is left alone: if `rotate_signing_key` retired it, it stays retired.
    """
    configured_pem = settings.SMART.get("SIGNING_KEY_PEM", "").strip()
    active = SigningKey.objects.filter(active=True).first()
    if configured_pem:
        pem = configured_pem + "\n"
        kid = key_id(pem)
        if active is not None and (
            active.kid == kid or SigningKey.objects.filter(kid=kid).exists()
        ):
            return active, False
        return _install_key(pem, configured=True, kid=kid), True
    if active is not None:
        return active, False
    if not settings.SMART.get("GENERATE_SIGNING_KEY"):
        raise ImproperlyConfigured(
            "No RS256 signing key: set SMART_SIGNING_KEY_PEM or SMART_SIGNING_KEY_FILE"
        )
    return _install_key(generate_private_pem(), configured=False), True


def _install_key(pem, *, configured, kid=None):
    """Make `pem` the active key and retire the previous one. Safe under concurrent workers.

    Every process hears of it through the shared version once the transaction commits.
    """
    kid = kid or key_id(pem)
    try:
        with transaction.atomic():
            SigningKey.objects.filter(active=True).exclude(kid=kid).update(
                active=None, retired_at=timezone.now()
            )
            row, created = SigningKey.objects.get_or_create(
                kid=kid, defaults={"private_pem": pem, "configured": configured, "active": True}
            )
            if not created and not row.active:
                # Only reached with no active key at all: the known key is all there is.
                row.active, row.retired_at = True, None
                row.save(update_fields=["active", "retired_at"])
            transaction.on_commit(announce_key_change)
            return row
    except IntegrityError:
        # Another worker installed a key at the same moment; use the one that won.
        return SigningKey.objects.get(active=True)


def announce_key_change():
    """Tell every process (through the shared cache) to re-read the keys."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def get_published_keys():
    """Keys in the JWKS: the active one and those retired less than a token lifetime ago."""
    cutoff = timezone.now() - timedelta(seconds=retention_seconds())
    published = SigningKey.objects.filter(Q(active=True) | Q(retired_at__gt=cutoff))
    return published.exclude(private_pem="")


def retention_seconds():
    """How long a retired key may still have live tokens: the longest lifetime of anything
    it signs, plus clock-skew leeway."""
    smart = settings.SMART
    lifetimes = [
        smart[name]
        for name in (
            "ACCESS_TOKEN_LIFETIME",
            "BACKEND_TOKEN_LIFETIME",
            "ID_TOKEN_LIFETIME",
            "ADMIN_TOKEN_LIFETIME",
        )
        if name in smart
    ]
    return max(lifetimes) + RETENTION_LEEWAY


class KeyAlreadyUsed(ValueError):
    """The key given to a rotation is already known: active now, or retired for good."""


def do_rotate_signing_key(pem=None):
    """Retire the active key and activate `pem` (or a newly generated key). Returns the new
    row.

    Every process signs with the new key within VERSION_CHECK_SECONDS of the commit; tokens
    signed by the old one verify until it leaves the JWKS, `retention_seconds()` from now.
    """
    if pem is not None:
        kid = key_id(pem)
        existing = SigningKey.objects.filter(kid=kid).first()
        if existing is not None:
            state = "the active key" if existing.active else "retired and may not sign again"
            raise KeyAlreadyUsed(f"Key {kid} is {state}")
    row = _install_key(pem or generate_private_pem(), configured=pem is not None)
    key_ring.clear()
    return row


def do_erase_expired_keys():
    """Erase the private half of keys retired more than `retention_seconds()` ago: no live
    token can carry their kid, so they verify nothing. The row stays, so a configuration
    still naming the key cannot bring it back. Returns how many were erased."""
    cutoff = timezone.now() - timedelta(seconds=retention_seconds())
    expired = SigningKey.objects.filter(active__isnull=True, retired_at__lte=cutoff)
    return expired.exclude(private_pem="").update(private_pem="")


key_ring = KeyRing()


def get_signing_key():
    return key_ring.active()


def get_active_jwk():
    """The active key as a jwcrypto JWK, for DOT's id_token signing (parsed once per PEM)."""
    from oauth2_provider.utils import jwk_from_pem

    return jwk_from_pem(get_signing_key().private_pem)


def get_jwks():
    return key_ring.jwks()
