"""RS256 signing keys: loading, first-use generation, rotation and the JWKS document.

Keys live in the `SigningKey` table so every worker and host signs with the same key and
verifies every other's tokens. In production the key comes from configuration
(SMART["SIGNING_KEY_PEM"]); when it changes, the previous key is retired but stays in the
JWKS until every token it signed has expired. In development a key is generated on first use.

Parsed keys are cached in the process (parsing a PEM costs milliseconds, signing with a parsed
key microseconds); the cache re-reads the database at most every `REFRESH_SECONDS`, so a
rotation done by one worker reaches the others quickly.
"""

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from jwcrypto import jwk

from .models import SigningKey

REFRESH_SECONDS = 60
# A kid we do not know triggers at most one database read per this many seconds.
UNKNOWN_KID_RELOAD_SECONDS = 5


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
        self._unknown_kid_at = 0.0
        self._uncommitted = set()

    def clear(self):
        with self._lock:
            self._active = None
            self._published = {}
            self._loaded_at = 0.0
            self._unknown_kid_at = 0.0
            self._uncommitted = set()

    def active(self):
        """The key that signs new tokens."""
        if self._active is None or time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            self._reload()
        return self._active

    def verification_key(self, kid):
        """The public key for `kid` if it is published, else None."""
        if self._active is None or time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            self._reload()
        key = self._published.get(kid)
        if key is None and time.monotonic() - self._unknown_kid_at > UNKNOWN_KID_RELOAD_SECONDS:
            self._unknown_kid_at = time.monotonic()
            self._reload()
            key = self._published.get(kid)
        return key.private_key.public_key() if key else None

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
            self._loaded_at = time.monotonic()

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


def generate_private_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def ensure_active_key():
    """(active key row, created?), creating it from configuration or generating it in dev."""
    configured_pem = settings.SMART.get("SIGNING_KEY_PEM", "").strip()
    if configured_pem:
        pem = configured_pem + "\n"
        kid = key_id(pem)
        existing = SigningKey.objects.filter(kid=kid, active=True).first()
        if existing is not None:
            return existing, False
        return _install_key(pem, configured=True, kid=kid), True
    active = SigningKey.objects.filter(active=True).first()
    if active is not None:
        return active, False
    if not settings.SMART.get("GENERATE_SIGNING_KEY"):
        raise ImproperlyConfigured(
            "No RS256 signing key: set SMART_SIGNING_KEY_PEM or SMART_SIGNING_KEY_FILE"
        )
    return _install_key(generate_private_pem(), configured=False), True


def _install_key(pem, *, configured, kid=None):
    """Make `pem` the active key and retire the previous one. Safe under concurrent workers."""
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
                row.active, row.retired_at = True, None
                row.save(update_fields=["active", "retired_at"])
            return row
    except IntegrityError:
        # Another worker installed a key at the same moment; use the one that won.
        return SigningKey.objects.get(active=True)


def get_published_keys():
    """Keys in the JWKS: the active one and those retired less than a token lifetime ago."""
    cutoff = timezone.now() - timedelta(seconds=retention_seconds())
    return SigningKey.objects.filter(Q(active=True) | Q(retired_at__gt=cutoff))


def retention_seconds():
    """How long a retired key may still have live tokens (plus clock-skew margin)."""
    smart = settings.SMART
    return (
        max(
            smart["ACCESS_TOKEN_LIFETIME"],
            smart["ID_TOKEN_LIFETIME"],
            smart["ADMIN_TOKEN_LIFETIME"],
        )
        + 300
    )


def do_rotate_signing_key(pem=None):
    """Retire the active key and activate `pem` (or a new generated key). Returns the new row.

    Other processes pick the new key up within REFRESH_SECONDS; tokens signed by the old one
    stay verifiable because the old key stays published for `retention_seconds()`.
    """
    row = _install_key(pem or generate_private_pem(), configured=pem is not None)
    key_ring.clear()
    return row


key_ring = KeyRing()


def get_signing_key():
    return key_ring.active()


def get_active_jwk():
    """The active key as a jwcrypto JWK, for DOT's id_token signing (parsed once per PEM)."""
    from oauth2_provider.utils import jwk_from_pem

    return jwk_from_pem(get_signing_key().private_pem)


def get_jwks():
    return key_ring.jwks()
