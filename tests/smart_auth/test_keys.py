"""Signing keys: generated once in development, from configuration in production, rotated
with the old key kept in the JWKS until its tokens have expired."""

from datetime import timedelta

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from smart_auth import keys
from smart_auth.models import SigningKey
from smart_auth.tokens import InvalidToken, default_token_signer

pytestmark = pytest.mark.django_db


def test_a_development_key_is_generated_once_and_stored(settings):
    first = keys.get_signing_key()
    keys.key_ring.clear()
    assert keys.get_signing_key().kid == first.kid
    assert SigningKey.objects.count() == 1
    assert SigningKey.objects.get().kid == keys.key_id(first.private_pem)


def test_without_a_configured_key_production_refuses_to_sign(settings):
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": "", "GENERATE_SIGNING_KEY": False}
    with pytest.raises(ImproperlyConfigured, match="SMART_SIGNING_KEY"):
        keys.get_signing_key()


def test_a_configured_key_becomes_active_and_retires_the_previous_one(settings):
    old = keys.get_signing_key()
    pem = keys.generate_private_pem()
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": pem}
    keys.key_ring.clear()
    new = keys.get_signing_key()
    assert new.kid == keys.key_id(pem) != old.kid
    retired = SigningKey.objects.get(kid=old.kid)
    assert retired.active is None and retired.retired_at is not None
    assert SigningKey.objects.get(kid=new.kid).configured


def test_jwks_publishes_public_rsa_keys_with_kids_and_keeps_retired_ones_for_a_while():
    old = keys.get_signing_key()
    new = keys.do_rotate_signing_key()
    published = {key["kid"]: key for key in keys.get_jwks()["keys"]}
    assert set(published) == {old.kid, new.kid}
    for key in published.values():
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert "d" not in key and "p" not in key  # public half only
    SigningKey.objects.filter(kid=old.kid).update(
        retired_at=timezone.now() - timedelta(seconds=keys.retention_seconds() + 1)
    )
    keys.key_ring.clear()
    assert [key["kid"] for key in keys.get_jwks()["keys"]] == [new.kid]


def test_tokens_signed_before_a_rotation_still_verify(patient_user):
    token, _ = default_token_signer.make_admin_token(patient_user)
    keys.do_rotate_signing_key()
    assert default_token_signer.verify_admin_token(token)["sub"] == str(patient_user.pk)


def test_a_token_signed_by_an_unknown_key_is_rejected(patient_user):
    token, _ = default_token_signer.make_admin_token(patient_user)
    stranger = keys.generate_private_pem()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "someone-else"})
    with pytest.raises(InvalidToken):
        default_token_signer.verify_admin_token(forged)
    same_kid = jwt.encode(
        claims, stranger, algorithm="RS256", headers={"kid": keys.get_signing_key().kid}
    )
    with pytest.raises(InvalidToken):
        default_token_signer.verify_admin_token(same_kid)


def test_unsigned_and_hmac_tokens_are_rejected(patient_user):
    token, _ = default_token_signer.make_admin_token(patient_user)
    claims = jwt.decode(token, options={"verify_signature": False})
    for forged in (
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(
            claims, "s" * 64, algorithm="HS256", headers={"kid": keys.get_signing_key().kid}
        ),
    ):
        with pytest.raises(InvalidToken):
            default_token_signer.verify_admin_token(forged)


def test_a_key_created_in_a_rolled_back_transaction_is_not_remembered():
    from django.db import transaction

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        generated = keys.get_signing_key()
        assert keys.get_signing_key().kid == generated.kid
        raise Rollback
    assert not SigningKey.objects.filter(kid=generated.kid).exists()
    assert keys.get_signing_key().kid != generated.kid


def test_a_process_still_configured_with_the_previous_key_does_not_reinstall_it(settings):
    """A rolling deploy: hosts with the old configuration keep signing with the new key."""
    old_pem, new_pem = keys.generate_private_pem(), keys.generate_private_pem()
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": old_pem}
    assert keys.get_signing_key().kid == keys.key_id(old_pem)
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": new_pem}
    keys.key_ring.clear()
    assert keys.get_signing_key().kid == keys.key_id(new_pem)
    settings.SMART = {**settings.SMART, "SIGNING_KEY_PEM": old_pem}
    keys.key_ring.clear()
    assert keys.get_signing_key().kid == keys.key_id(new_pem)
    assert SigningKey.objects.get(kid=keys.key_id(old_pem)).active is None


def test_expired_keys_lose_their_private_half_and_are_never_published():
    old = keys.get_signing_key()
    keys.do_rotate_signing_key()
    assert keys.do_erase_expired_keys() == 0  # still within its retention
    SigningKey.objects.filter(kid=old.kid).update(
        retired_at=timezone.now() - timedelta(seconds=keys.retention_seconds() + 1)
    )
    assert keys.do_erase_expired_keys() == 1
    assert SigningKey.objects.get(kid=old.kid).private_pem == ""
    assert old.kid not in {row.kid for row in keys.get_published_keys()}
