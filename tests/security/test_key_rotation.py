"""manage.py rotate_signing_key end to end: new tokens carry the new kid, tokens signed before
still verify, the JWKS lists both until the old key's tokens have expired, and every process
switches within seconds."""

from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from smart_auth import keys
from smart_auth.models import SigningKey
from smart_auth.tokens import default_token_signer
from tests.smart_support import claims_of, fhir_get, full_launch, refresh

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient patient/*.rs offline_access"


@pytest.fixture
def rotate(django_capture_on_commit_callbacks):
    """Run the command as an operator would: committed, so every process hears of it."""

    def run(*args):
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("rotate_signing_key", *args, stdout=out)
        return out.getvalue()

    return run


def kid_of(token):
    return jwt.get_unverified_header(token)["kid"]


def published_kids():
    return {key["kid"] for key in Client().get("/.well-known/jwks.json").json()["keys"]}


def test_rotation_end_to_end(rotate, patient_user, public_app):
    _launch, before = full_launch(patient_user, public_app, SCOPES)
    old_kid = kid_of(before["access_token"])

    output = rotate()
    new_kid = SigningKey.objects.get(active=True).kid
    assert new_kid != old_kid
    assert f"New signing key: {new_kid}" in output
    assert f"Retired key {old_kid} stays in the JWKS until" in output

    # Tokens signed before the rotation still work; new ones carry the new kid.
    assert fhir_get("/fhir/Patient/pat-1", before["access_token"]).status_code == 200
    after = refresh(Client(), public_app, before["refresh_token"]).json()
    assert kid_of(after["access_token"]) == new_kid
    assert fhir_get("/fhir/Patient/pat-1", after["access_token"]).status_code == 200
    assert published_kids() == {old_kid, new_kid}

    # Once the old key's last token has expired, the key leaves the JWKS and verifies nothing.
    SigningKey.objects.filter(kid=old_kid).update(
        retired_at=timezone.now() - timedelta(seconds=keys.retention_seconds() + 1)
    )
    keys.key_ring.clear()
    assert published_kids() == {new_kid}
    assert fhir_get("/fhir/Patient/pat-1", before["access_token"]).status_code == 401

    # The next rotation erases the expired key's private half (its row stays).
    output = rotate()
    assert "Erased the private part of 1 expired key(s)" in output
    assert SigningKey.objects.get(kid=old_kid).private_pem == ""


def test_the_old_key_is_kept_exactly_as_long_as_its_tokens_may_live(settings):
    settings.SMART = {
        **settings.SMART,
        "ACCESS_TOKEN_LIFETIME": 600,
        "ID_TOKEN_LIFETIME": 3600,
        "ADMIN_TOKEN_LIFETIME": 900,
    }
    assert keys.retention_seconds() == 3600 + keys.RETENTION_LEEWAY


def test_another_process_signs_with_the_new_key_within_seconds(
    rotate, django_capture_on_commit_callbacks
):
    other = keys.KeyRing()  # a second worker, with its own memory
    with django_capture_on_commit_callbacks(execute=True):
        old = other.active()  # the first key, generated and committed
    rotate()
    assert other.active().kid == old.kid  # it has not looked yet
    other._checked_at -= keys.VERSION_CHECK_SECONDS + 1  # a few seconds later
    new = other.active()
    assert new.kid != old.kid
    assert new.kid == SigningKey.objects.get(active=True).kid


def test_another_process_verifies_new_tokens_at_once(
    rotate, patient_user, django_capture_on_commit_callbacks
):
    other = keys.KeyRing()
    with django_capture_on_commit_callbacks(execute=True):
        other.active()
    other._unknown_kid_at = 1e12  # it just reloaded for some other unknown kid
    rotate()
    token, _ = default_token_signer.make_admin_token(patient_user)  # signed here, new key
    assert other.verification_key(kid_of(token)) is not None


def test_a_configured_key_retired_by_a_rotation_does_not_come_back(settings, rotate):
    configured = keys.generate_private_pem()
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": configured}
    assert keys.get_signing_key().kid == keys.key_id(configured)
    output = rotate()
    assert "SMART_SIGNING_KEY_PEM names an older key" in output
    keys.key_ring.clear()
    assert keys.get_signing_key().kid != keys.key_id(configured)


def test_a_key_from_a_file_becomes_the_signing_key(rotate, tmp_path):
    pem = keys.generate_private_pem()
    path = tmp_path / "key.pem"
    path.write_text(pem)
    rotate("--pem-file", str(path))
    assert keys.get_signing_key().kid == keys.key_id(pem)


def test_a_retired_key_may_not_be_rotated_back_in(rotate, tmp_path):
    path = tmp_path / "old.pem"
    path.write_text(keys.get_signing_key().private_pem)
    rotate()
    with pytest.raises(CommandError, match="retired and may not sign again"):
        rotate("--pem-file", str(path))


@pytest.mark.parametrize("content", ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_a_file_that_is_not_a_key_is_refused(rotate, tmp_path, content):
    path = tmp_path / "bad.pem"
    path.write_text(content)
    with pytest.raises(CommandError, match="not a PEM private key"):
        rotate("--pem-file", str(path))


def test_a_missing_file_is_refused(rotate, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        rotate("--pem-file", str(tmp_path / "missing.pem"))


def test_a_small_or_non_rsa_key_is_refused(rotate, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CommandError, match="RSA key of at least 2048 bits"):
        rotate("--pem-file", str(path))


def test_claims_of_a_rotated_token_are_unchanged(rotate, patient_user, public_app):
    _launch, before = full_launch(patient_user, public_app, SCOPES)
    rotate()
    after = refresh(Client(), public_app, before["refresh_token"]).json()
    old, new = claims_of(before["access_token"]), claims_of(after["access_token"])
    assert {k: old[k] for k in ("iss", "aud", "patient", "scope")} == {
        k: new[k] for k in ("iss", "aud", "patient", "scope")
    }
