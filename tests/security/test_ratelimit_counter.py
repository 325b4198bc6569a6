"""The shared-window counter under the rate limits: rates, leases, several processes, refunds,
and both shared caches (the database cache and Redis)."""

import contextlib
import shutil
import socket
import subprocess
import time

import pytest
from django.core.exceptions import ValidationError

from smart_auth import ratelimit
from smart_auth.ratelimit import Rate, acquire, check, parse_rate

NOW = 1_800_000_030.0  # thirty seconds into a one-minute window


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/min", Rate(600, 60)),
        ("10/s", Rate(10, 1)),
        ("5 / second", Rate(5, 1)),
        ("1200/minutes", Rate(1200, 60)),
        ("100/hour", Rate(100, 3600)),
        ("7/d", Rate(7, 86400)),
        (" 3/MIN ", Rate(3, 60)),
    ],
)
def test_rates_are_requests_per_unit(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "600", "0/min", "-1/min", "10/ms", "ten/min", "10/week"])
def test_other_text_is_not_a_rate(text):
    with pytest.raises(ValueError, match="600/min"):
        parse_rate(text)


def test_the_validator_accepts_blank_for_the_default_and_refuses_nonsense():
    ratelimit.validate_rate("")
    ratelimit.validate_rate("50/min")
    with pytest.raises(ValidationError):
        ratelimit.validate_rate("lots")


def test_a_mistyped_default_is_a_system_check_error(settings):
    settings.SMART = {**settings.SMART, "API_RATE_LIMIT": "6000 a minute"}
    (error,) = ratelimit.check_rate_settings(None)
    assert error.id == "smart_auth.E030"
    assert "SMART_API_RATE_LIMIT" in error.msg


@contextlib.contextmanager
def process(state):
    """Run acquire/refund as the process whose local state is `state`."""
    saved = ratelimit._local
    ratelimit._local = state
    try:
        yield
    finally:
        ratelimit._local = saved


def allowed(scope, identity, rate, now=NOW):
    return acquire(scope, identity, rate, now=now).allowed


@pytest.mark.django_db
def test_two_processes_together_never_exceed_the_limit():
    """Leases of 1% (3 of 300): interleaved, two processes let exactly 300 through."""
    rate = Rate(300, 60)
    first, second = ratelimit._LocalState(), ratelimit._LocalState()
    granted = 0
    for number in range(400):
        with process(first if number % 2 else second):
            granted += allowed("test", "client-a", rate)
    assert granted == 300


@pytest.mark.django_db
def test_a_small_limit_is_counted_exactly_in_the_cache():
    rate = Rate(3, 60)
    results = []
    for _ in range(5):
        ratelimit.clear_local_state()  # every request on a fresh process
        results.append(allowed("test", "client-b", rate))
    assert results == [True, True, True, False, False]


@pytest.mark.django_db
def test_a_refusal_says_when_the_window_ends():
    rate = Rate(1, 60)
    assert allowed("test", "client-c", rate)
    decision = acquire("test", "client-c", rate, now=NOW + 12.5)
    assert not decision.allowed and decision.retry_after == 18
    assert allowed("test", "client-c", rate, now=NOW + 30)  # the next window


@pytest.mark.django_db
def test_budgets_are_separate_per_scope_and_identity():
    rate = Rate(1, 60)
    assert allowed("token", "x", rate)
    assert not allowed("token", "x", rate)
    assert allowed("api", "x", rate)
    assert allowed("token", "y", rate)


@pytest.mark.django_db
def test_a_check_takes_nothing_from_the_budget():
    rate = Rate(1, 60)
    for _ in range(3):
        assert check("test", "client-d", rate, now=NOW).allowed
        ratelimit.clear_local_state()
    assert allowed("test", "client-d", rate)
    ratelimit.clear_local_state()
    refused = check("test", "client-d", rate, now=NOW)
    assert not refused.allowed and refused.retry_after == 30


@pytest.fixture
def cache_reads(monkeypatch):
    """The keys `check` reads from the shared cache."""
    reads = []
    real_get = ratelimit.cache.get

    def get(key, *args, **kwargs):
        reads.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(ratelimit.cache, "get", get)
    return reads


def use_up_elsewhere(scope, identity, rate):
    """Another process spends the whole window's budget."""
    with process(ratelimit._LocalState()):
        while allowed(scope, identity, rate):
            pass


@pytest.mark.django_db
def test_room_found_by_a_check_is_trusted_for_a_second(cache_reads):
    rate = Rate(5, 60)
    assert check("test", "address-a", rate, now=NOW).allowed
    assert check("test", "address-a", rate, now=NOW + 0.5).allowed
    assert len(cache_reads) == 1  # the second check asked nobody

    use_up_elsewhere("test", "address-a", rate)
    assert check("test", "address-a", rate, now=NOW + 0.9).allowed  # not seen yet
    refused = check("test", "address-a", rate, now=NOW + ratelimit.ROOM_TRUSTED_SECONDS)
    assert not refused.allowed  # asked again: the budget is gone


@pytest.mark.django_db
def test_room_is_remembered_for_a_bounded_number_of_identities(monkeypatch, cache_reads):
    """Many addresses each seen once (a scan, a botnet) must not grow a worker's memory."""
    monkeypatch.setattr(ratelimit, "MAX_LOCAL_ENTRIES", 3)
    rate = Rate(5, 60)
    for number in range(10):
        assert check("test", f"address-{number}", rate, now=NOW).allowed
    assert len(ratelimit._local.pools) == 3
    assert check("test", "address-9", rate, now=NOW + 0.1).allowed  # forgotten: asks again
    assert len(cache_reads) == 11


@pytest.mark.django_db
def test_charging_a_budget_ends_the_trust_in_its_room():
    """Failures charged by this process are counted exactly: the next check asks again."""
    rate = Rate(2, 60)
    for attempt in range(2):
        assert check("test", "address-b", rate, now=NOW + attempt / 10).allowed
        assert allowed("test", "address-b", rate, now=NOW + attempt / 10)
    assert not check("test", "address-b", rate, now=NOW + 0.3).allowed


@pytest.mark.django_db
def test_the_rate_of_a_lease_is_looked_up_only_when_a_lease_is_taken():
    calls = []

    def rate():
        calls.append(1)
        return Rate(1000, 60)

    for _ in range(10):
        assert allowed("test", "client-e", rate)
    assert len(calls) == 1  # one lease of 10


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url():
    """A private redis-server on a free port for these tests (skipped when not installed)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def on_redis(settings, redis_url):
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url}
    }
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


def test_on_redis_the_counter_is_atomic_and_expires_with_its_window(on_redis):
    rate = Rate(300, 60)
    first, second = ratelimit._LocalState(), ratelimit._LocalState()
    granted = 0
    for number in range(400):
        with process(first if number % 2 else second):
            granted += allowed("test", "redis-client", rate)
    assert granted == 300
    (key,) = on_redis.keys("ratelimit:test:*")
    assert 0 < on_redis.ttl(key) <= 30 + 60  # the rest of the window, plus a margin


def test_on_redis_a_small_limit_is_exact_across_processes(on_redis):
    rate = Rate(2, 60)
    results = []
    for _ in range(4):
        ratelimit.clear_local_state()
        results.append(allowed("test", "redis-small", rate))
    assert results == [True, True, False, False]
