"""System checks: configuration mistakes reported at `migrate`/`check`, not at the first token."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_signing_key(app_configs, **kwargs):
    """Production needs a configured RS256 key; development may generate one."""
    smart = settings.SMART
    pem = smart.get("SIGNING_KEY_PEM", "").strip()
    if not pem:
        if smart.get("GENERATE_SIGNING_KEY"):
            return []
        return [
            Error(
                "No RS256 signing key is configured.",
                hint="Set SMART_SIGNING_KEY_PEM or SMART_SIGNING_KEY_FILE (a PEM private key).",
                id="smart_auth.E001",
            )
        ]
    return _check_pem(pem)


def _check_pem(pem):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        return [
            Error(f"SMART_SIGNING_KEY_PEM is not a PEM private key: {error}", id="smart_auth.E002")
        ]
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        return [
            Error("The signing key must be an RSA key of at least 2048 bits.", id="smart_auth.E003")
        ]
    return []


@register(deploy=True)
def check_jwks_addresses(app_configs, **kwargs):
    """Apps choose their JWKS URLs: fetching private addresses lets them probe the network."""
    if settings.SMART.get("JWKS_ALLOW_PRIVATE_ADDRESSES") and not settings.DEBUG:
        return [
            Warning(
                "SMART_JWKS_ALLOW_PRIVATE_ADDRESSES is on: a registered app's JWKS URL may make "
                "this server fetch from loopback and private addresses.",
                hint="Leave it off in production unless apps publish keys on a private network.",
                id="smart_auth.W001",
            )
        ]
    return []
