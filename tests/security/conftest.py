"""Fixtures of the abuse tests: each test starts with no leases, as a fresh process would."""

import pytest

from smart_auth import ratelimit


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    ratelimit.clear_local_state()
    yield
    ratelimit.clear_local_state()


@pytest.fixture
def limits(settings):
    """Set SMART rate limits for one test: limits(TOKEN_RATE_LIMIT="3/min", ...)."""

    def set_limits(**values):
        settings.SMART = {**settings.SMART, **values}

    return set_limits
