# Every token here is signed with one configured server key, not a key generated per test.
from tests.smart_support import configured_signing_key  # noqa: F401
