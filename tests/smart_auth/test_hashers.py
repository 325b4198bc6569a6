"""Client secrets are hashed fast; user passwords keep PBKDF2."""

from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from config import settings as project_settings
from smart_auth.hashers import ClientSecretHasher
from tests.smart_support import make_app


def test_client_secret_hasher_round_trips_and_rejects_wrong_secrets():
    encoded = make_password("s3cret" * 20, hasher="smart_client_sha256")
    assert encoded.startswith("smart_client_sha256$")
    assert check_password("s3cret" * 20, encoded)
    assert not check_password("s3cret" * 20 + "x", encoded)


def test_the_fast_hasher_is_registered_but_never_hashes_user_passwords(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS  # not the tests' fast one
    assert settings.PASSWORD_HASHERS[0].endswith("PBKDF2PasswordHasher")
    assert "smart_auth.hashers.ClientSecretHasher" in settings.PASSWORD_HASHERS
    assert identify_hasher(make_password("a user password")).algorithm == "pbkdf2_sha256"


def test_summary_masks_the_hash():
    summary = ClientSecretHasher().safe_summary(make_password("x", hasher="smart_client_sha256"))
    assert "*" in str(summary)


def test_app_secrets_are_stored_hashed_with_the_fast_hasher(db):
    app, secret = make_app("Hashed", confidential=True)
    app.refresh_from_db()
    assert app.client_secret != secret
    assert identify_hasher(app.client_secret).algorithm == "smart_client_sha256"
    assert check_password(secret, app.client_secret)
