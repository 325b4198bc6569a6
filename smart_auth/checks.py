"""System checks: configuration mistakes reported at `migrate`/`check`, not at the first token."""

from django.conf import settings
from django.core.checks import Error, register


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
