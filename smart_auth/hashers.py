"""A fast password hasher for client secrets, named in OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"].

django-oauth-toolkit hashes client secrets with the first entry of PASSWORD_HASHERS (PBKDF2,
about 250 ms of CPU) and pays that again on every confidential token request. Key stretching
only protects guessable secrets; ours are 128 random letters and digits (~760 bits), so one
salted SHA-256 is as hard to invert and costs microseconds. The class is listed in
PASSWORD_HASHERS after PBKDF2, so user passwords keep the slow hash.
"""

import hashlib

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_noop as _


class ClientSecretHasher(BasePasswordHasher):
    """Salted SHA-256, for machine-generated high-entropy secrets only (never passwords)."""

    algorithm = "smart_client_sha256"

    def encode(self, password, salt):
        self._check_encode_args(password, salt)
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded):
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {
            _("algorithm"): decoded["algorithm"],
            _("salt"): mask_hash(decoded["salt"], show=2),
            _("hash"): mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded):
        return False

    def harden_runtime(self, password, encoded):
        pass
