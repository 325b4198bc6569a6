"""Production settings fail clearly when unset and pass Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]


def private_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


PRODUCTION = {
    "DEBUG": "false",
    "SMART_SIGNING_KEY_PEM": private_pem(),
    "SECRET_KEY": "x" * 64 + "-production-test-key-with-enough-entropy",
    "ALLOWED_HOSTS": "fhir.example.org",
    "PUBLIC_BASE_URL": "https://fhir.example.org",
}


def manage(*args, env):
    clean = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_SETTINGS_MODULE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_fails_clearly_in_production():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_missing_public_base_url_fails_clearly_in_production():
    env = {k: v for k, v in PRODUCTION.items() if k != "PUBLIC_BASE_URL"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "PUBLIC_BASE_URL" in result.stderr


def test_per_process_memory_cache_is_refused():
    result = manage("check", env={"CACHE_URL": "locmemcache://"})
    assert result.returncode != 0
    assert "CACHE_URL" in result.stderr


def test_missing_signing_key_fails_clearly_in_production():
    env = {k: v for k, v in PRODUCTION.items() if k != "SMART_SIGNING_KEY_PEM"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "smart_auth.E001" in result.stderr
    assert "SMART_SIGNING_KEY_PEM" in result.stderr


def test_signing_key_that_is_not_a_key_fails_clearly():
    result = manage("check", env=PRODUCTION | {"SMART_SIGNING_KEY_PEM": "not a key"})
    assert result.returncode != 0
    assert "smart_auth.E002" in result.stderr


def test_the_timed_audit_drain_can_be_turned_off():
    show = "from django.conf import settings; print(settings.FHIR['AUDIT_DRAIN_SECONDS'])"
    result = manage("shell", "--no-imports", "-c", show, env={"AUDIT_DRAIN_SECONDS": "off"})
    assert result.stdout.split() == ["None"], result.stderr
