"""Request budgets shared by every worker and host: fixed windows counted in Django's cache.

A budget is a rate ("1200/min") for one identity (a client id, an address) in one scope
("token", "api", ...). The count of each window lives in the shared cache under a key naming
the scope, the identity's digest and the window's number, so every process adds to the same
counter and a limit holds across workers and hosts.

Counting each request in the cache would cost a round trip per request (several SQL
statements with the database cache). Instead a process takes a *lease* of
`lease_size(rate)` requests from the shared counter at once (1% of the limit, at least one)
and hands them out locally. The shared counter never grants more than the limit, so the
limit holds whatever the processes do; a lease a process does not use up is lost when the
window ends, so a budget can run out up to (processes x lease) requests early. Limits under
200 a window take leases of one: every request is counted in the cache, exactly.

Atomicity: with Redis (django-redis, CACHE_URL=redis://...) `incr` is a single INCRBY, so
concurrent leases never overlap. Django's database cache has no atomic increment (read then
write): two processes taking a lease at the same instant may both be granted it, so the
database cache can let through up to one extra lease per concurrent taker. Use Redis where the
limits must be exact.

`acquire` takes one request from a budget before the work; `check` only asks whether any is
left, for requests charged after their outcome is known (the token endpoint charges successes
to the app and failures to the address): those can overshoot a limit by the requests in
flight at the moment it runs out. A `check` that found room trusts it for
`ROOM_TRUSTED_SECONDS` without asking the cache again, until this process charges that budget
itself (the token endpoint's address budget, for an address that never fails, then costs one
cache read a second rather than one a request); a budget others use up in that time is
refused here at most that much later.

Per-app limits (SmartApp.token_rate_limit / api_rate_limit) are read once per lease from the
shared cache, which a save or delete of the app clears (else it expires after
APP_RATES_SECONDS); they never cost a database query per request.
"""

import hashlib
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.checks import Error, register
from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.models import get_application_model

logger = logging.getLogger(__name__)

UNITS = {
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], 1),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes"], 60),
    **dict.fromkeys(["h", "hour", "hours"], 3600),
    **dict.fromkeys(["d", "day", "days"], 86400),
}
RATE_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*([a-z]+)\s*$")
# How long a per-app limit read from the database is trusted without a save clearing it.
APP_RATES_SECONDS = 300
# A budget found used up is refused without asking the cache for this long; then the cache
# (and the app's limit, perhaps raised meanwhile) is asked again.
RECHECK_SECONDS = 5
# A budget a `check` found room in is trusted this long without asking the cache again.
ROOM_TRUSTED_SECONDS = 1
# Local bookkeeping is pruned of past windows when it holds more identities than this.
MAX_LOCAL_ENTRIES = 10_000


@dataclass(frozen=True)
class Rate:
    """`count` requests per `seconds`."""

    count: int
    seconds: int

    def __str__(self):
        return f"{self.count}/{self.seconds}s"


@lru_cache(maxsize=256)
def parse_rate(text):
    """'600/min' → Rate(600, 60). Units: s, sec, second, m, min, minute, h, hour, d, day
    and their plurals. Raises ValueError with a message fit for a form or the admin."""
    match = RATE_RE.match(str(text).lower())
    if not match or match.group(2) not in UNITS or int(match.group(1)) < 1:
        raise ValueError(
            f"{text!r} is not a rate: write requests per unit, such as 600/min "
            "(units: second, minute, hour, day)"
        )
    return Rate(int(match.group(1)), UNITS[match.group(2)])


def validate_rate(value):
    """Django validator for a rate field; blank means the server default."""
    if value in ("", None):
        return
    try:
        parse_rate(value)
    except ValueError as error:
        raise ValidationError(str(error), code="invalid_rate") from None


def lease_size(rate):
    """Requests a process takes from the shared counter at once: 1% of the limit, at least 1."""
    return max(1, rate.count // 100)


@dataclass(frozen=True)
class Decision:
    """The answer for one request: allowed, or not and for how many more seconds."""

    allowed: bool
    retry_after: int = 0


@dataclass
class _Pool:
    """This process's part of one window of one budget."""

    rate: Rate
    window: int
    remaining: int = 0
    # When the shared counter last said the window is used up (refused locally until then
    # plus RECHECK_SECONDS, so a raised limit takes effect without waiting for the window).
    exhausted_at: float | None = None
    # When a `check` last found room in the shared counter, until this process charges it.
    room_seen_at: float | None = None

    def retry_after(self, now):
        return max(1, math.ceil((self.window + 1) * self.rate.seconds - now))


@dataclass
class _LocalState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pools: dict = field(default_factory=dict)


_local = _LocalState()
# The time windows are counted in (tests replace it).
clock = time.time


def clear_local_state():
    """Forget this process's leases, as a new process would start (tests use it)."""
    with _local.lock:
        _local.pools.clear()


def acquire(scope, identity, rate, now=None):
    """Take one request from `identity`'s budget in `scope`. Returns a Decision.

    `rate` is a Rate, or a function returning it, called only when a new lease is needed
    (so a per-app limit costs nothing while a lease lasts).
    """
    now = clock() if now is None else now
    with _local.lock:
        answer = _local_answer(scope, identity, now, take=True)
    if answer is not None:
        return answer
    rate = rate() if callable(rate) else rate
    window = int(now // rate.seconds)
    granted = _take_from_shared(scope, identity, window, rate, now)
    with _local.lock:
        pool = _pool(scope, identity, rate, window, now)
        pool.room_seen_at = None
        if granted == 0:
            pool.exhausted_at = now
            return Decision(False, pool.retry_after(now))
        pool.remaining += granted - 1
        pool.exhausted_at = None
    return Decision(True)


def check(scope, identity, rate, now=None):
    """Whether `identity` has budget left in `scope`, taking none of it (for requests that
    are charged only once their outcome is known). At most one cache read."""
    now = clock() if now is None else now
    with _local.lock:
        answer = _local_answer(scope, identity, now, take=False)
    if answer is not None:
        return answer
    rate = rate() if callable(rate) else rate
    window = int(now // rate.seconds)
    room = (cache.get(_counter_key(scope, identity, rate, window)) or 0) < rate.count
    with _local.lock:
        if room and not _has_room_for(scope, identity, now):
            return Decision(True)  # not remembered: addresses seen once must not fill memory
        pool = _pool(scope, identity, rate, window, now)
        if room:
            pool.room_seen_at, pool.exhausted_at = now, None
            return Decision(True)
        pool.room_seen_at, pool.exhausted_at = None, now
        return Decision(False, pool.retry_after(now))


def _local_answer(scope, identity, now, *, take):
    """The answer this process's lease gives on its own (lock held), or None: ask the cache."""
    pool = _local.pools.get((scope, identity))
    if pool is None or pool.window != int(now // pool.rate.seconds):
        return None
    if pool.remaining > 0:
        if take:
            pool.remaining -= 1
        return Decision(True)
    if pool.exhausted_at is not None and now - pool.exhausted_at < RECHECK_SECONDS:
        return Decision(False, pool.retry_after(now))
    if (
        not take
        and pool.room_seen_at is not None
        and now - pool.room_seen_at < ROOM_TRUSTED_SECONDS
    ):
        return Decision(True)
    return None


def _pool(scope, identity, rate, window, now):
    """This process's pool of the window (lock held), new if the window or rate changed."""
    pool = _local.pools.get((scope, identity))
    if pool is None or pool.window != window or pool.rate != rate:
        _prune(now)
        pool = _local.pools[(scope, identity)] = _Pool(rate, window)
    return pool


def _has_room_for(scope, identity, now):
    """Whether this process keeps (or may start) a pool for `identity` (lock held)."""
    if (scope, identity) in _local.pools:
        return True
    _prune(now)
    return len(_local.pools) < MAX_LOCAL_ENTRIES


def _prune(now):
    """Drop the pools of windows that have ended, once there are many."""
    if len(_local.pools) >= MAX_LOCAL_ENTRIES:
        pools = _local.pools
        for key in [k for k, pool in pools.items() if pool.window < now // pool.rate.seconds]:
            del pools[key]


def _counter_key(scope, identity, rate, window):
    return f"ratelimit:{scope}:{_digest(identity)}:{rate.seconds}:{window}"


def _take_from_shared(scope, identity, window, rate, now):
    """Add a lease to the window's shared counter; how much of it is within the limit."""
    lease = lease_size(rate)
    key = _counter_key(scope, identity, rate, window)
    # Kept a little past the window's end so a late lease never recreates it at zero.
    timeout = math.ceil((window + 1) * rate.seconds - now) + 60
    total = _add_to_counter(key, lease, timeout)
    return max(0, min(lease, rate.count - (total - lease)))


def _add_to_counter(key, delta, timeout):
    """The counter at `key` after adding `delta` (created with `timeout` if missing)."""
    if isinstance(caches["default"], BaseDatabaseCache):
        # BaseCache.incr is get-then-set, and its set would reset the key's expiry to the
        # default timeout; do the same two steps with the window's own expiry.
        current = cache.get(key)
        if current is None and cache.add(key, delta, timeout):
            return delta
        total = (current or cache.get(key) or 0) + delta
        cache.set(key, total, timeout)
        return total
    try:
        return cache.incr(key, delta)  # atomic on Redis, and keeps the key's expiry
    except ValueError:
        if cache.add(key, delta, timeout):
            return delta
        return cache.incr(key, delta)


def _digest(identity):
    return hashlib.sha256(str(identity).encode()).hexdigest()[:32]


# --- Limits: server defaults and per-app overrides ---------------------------------------

_APP_FIELDS = {"token": "token_rate_limit", "api": "api_rate_limit"}
_DEFAULT_SETTINGS = {
    "token": "TOKEN_RATE_LIMIT",
    "token-address": "TOKEN_ADDRESS_RATE_LIMIT",
    "api": "API_RATE_LIMIT",
}


def default_rate(scope):
    """The server-wide limit for `scope` from settings.SMART (e.g. TOKEN_RATE_LIMIT)."""
    return parse_rate(settings.SMART[_DEFAULT_SETTINGS[scope]])


@register()
def check_rate_settings(app_configs, **kwargs):
    """A mistyped limit is reported at `check`/`migrate`, not as a 500 on the first request."""
    errors = []
    for name in _DEFAULT_SETTINGS.values():
        try:
            parse_rate(settings.SMART[name])
        except (KeyError, ValueError) as error:
            message = f"SMART[{name!r}] (env SMART_{name}) is not a valid rate: {error}"
            errors.append(Error(message, id="smart_auth.E030"))
    return errors


def client_rate(scope, client_id):
    """The limit of `client_id` in `scope` ("token" or "api"): its app's override, if it has
    one, else the server default. Read from the shared cache; the database on a miss."""
    override = get_app_rates(client_id).get(_APP_FIELDS[scope], "")
    if override:
        try:
            return parse_rate(override)
        except ValueError:
            logger.warning("Ignoring the invalid %s of app %s: %r", scope, client_id, override)
    return default_rate(scope)


def get_app_rates(client_id):
    """{"token_rate_limit": ..., "api_rate_limit": ...} of the app (blank ones too), {} if
    there is no such app. Cached in the shared cache until the app is saved or deleted."""
    if "\x00" in client_id:
        return {}  # names no app, and PostgreSQL refuses to compare a NUL byte
    key = _app_key(client_id)
    rates = cache.get(key)
    if rates is None:
        row = (
            get_application_model()
            .objects.filter(client_id=client_id)
            .values(*_APP_FIELDS.values())
            .first()
        )
        rates = row or {}
        cache.set(key, rates, APP_RATES_SECONDS)
    return rates


def _app_key(client_id):
    return f"ratelimit:app:{_digest(client_id)}"


@receiver(post_save, sender=settings.OAUTH2_PROVIDER_APPLICATION_MODEL)
@receiver(post_delete, sender=settings.OAUTH2_PROVIDER_APPLICATION_MODEL)
def forget_app_rates(sender, instance, **kwargs):
    """Every process reads the app's new limits at its next lease."""
    cache.delete(_app_key(instance.client_id))
