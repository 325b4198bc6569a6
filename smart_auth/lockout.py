"""Sign-in lockout with django-axes: too many failed sign-ins lock an account, or an address.

Every password check that goes through `django.contrib.auth.authenticate` with a request is
counted: the sign-in page (/smart/login), Django admin's login, and POST /auth/token. Axes'
database handler keeps the failures in the database, so the count is shared by every worker
and host. Two limits, over the last LOGIN_LOCKOUT_MINUTES:

- an **account** is locked after AXES_FAILURE_LIMIT failures (default 5) from anywhere, so a
  password cannot be guessed by spreading attempts over many addresses;
- an **address** is locked after LOGIN_ADDRESS_FAILURE_LIMIT failures (default 20) whatever
  the accounts, so one address cannot try a few passwords on every account. It is higher
  because one address may be a whole hospital behind its NAT.

A locked request gets 429 with Retry-After: the sign-in pages show `consent/locked.html`
("try again in N minutes or ask an administrator"), /auth/token an RFC 6749-style JSON error.
While locked, further attempts are refused without being counted, so the lock lifts on time.

Unlocking: Django admin → Axes → Access attempts (delete the rows of the user or address), or
`manage.py axes_reset_username NAME`, `axes_reset_ip ADDRESS`, `axes_reset` (everyone).
"""

import json
import math
from urllib.parse import quote

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q, Sum
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

LOCKED_TEMPLATE = "consent/locked.html"


class LoginLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with separate limits per account and per address.

    Axes compares one number with AXES_FAILURE_LIMIT; this reports the account's failures, or
    the address's scaled to that limit, whichever is nearer to locking.
    """

    def get_failures(self, request, credentials=None):
        account_limit, address_limit = limits()
        by_account, by_address = recent_failures(request, credentials)
        return max(by_account, by_address * account_limit // address_limit)


def limits():
    """(failures that lock an account, failures that lock an address)."""
    return settings.AXES_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT


def recent_failures(request, credentials=None):
    """(failures of the account, failures from the address) within the cool-off: one query."""
    username, address = get_client_username(request, credentials), request.axes_ip_address
    rows = _recent_attempts(request, username, address)
    totals = rows.aggregate(
        account=Sum("failures_since_start", filter=Q(username=username)),
        address=Sum("failures_since_start", filter=Q(ip_address=address)),
    )
    return (totals["account"] or 0) if username else 0, totals["address"] or 0


def lockout_seconds(request, credentials=None):
    """Seconds until every lock on this request's account and address has lifted.

    A lock lasts while the recent failures reach its limit; each attempt row stops counting
    a cool-off after its latest failure, so the lock lifts when the row that brought the
    total to the limit (counting from the newest) expires.
    """
    username, address = get_client_username(request, credentials), request.axes_ip_address
    cool_off = get_cool_off(request)
    rows = _recent_attempts(request, username, address).order_by("-attempt_time")
    rows = list(rows.values_list("username", "ip_address", "failures_since_start", "attempt_time"))
    account_limit, address_limit = limits()
    lifts = []
    for limit, matches in (
        (account_limit, lambda row: username and row[0] == username),
        (address_limit, lambda row: row[1] == address),
    ):
        total = 0
        for row in filter(matches, rows):
            total += row[2]
            if total >= limit:
                lifts.append(row[3] + cool_off)
                break
    if not lifts:
        return 0
    return max(0, math.ceil((max(lifts) - timezone.now()).total_seconds()))


def _recent_attempts(request, username, address):
    since = request.axes_attempt_time - get_cool_off(request)
    match = Q(ip_address=address) | Q(username=username) if username else Q(ip_address=address)
    return AccessAttempt.objects.filter(match, attempt_time__gte=since)


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; the locked page, or JSON for /auth/token."""
    AxesProxyHandler.update_request(request)
    seconds = max(60, lockout_seconds(request, credentials))
    minutes = math.ceil(seconds / 60)
    headers = {"Retry-After": str(seconds), "Cache-Control": "no-store"}
    if _is_json_login(request):
        description = (
            f"Too many failed sign-ins; try again in {minutes} minutes or ask an administrator"
        )
        body = {"error": "slow_down", "error_description": description}
        return JsonResponse(body, status=429, headers=headers)
    context = {"minutes": minutes, "retry_url": _retry_url(request)}
    response = render(request, LOCKED_TEMPLATE, context, status=429)
    for name, value in headers.items():
        response[name] = value
    return response


def _is_json_login(request):
    return request.path_info == reverse("smart_auth:admin-token")


def _retry_url(request):
    """The sign-in page the person came from, keeping a safe `next`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return request.path + (f"?next={quote(target)}" if target and allowed else "")


class JsonLoginLockoutMiddleware:
    """Lockout answers for POST /auth/token, a DRF view.

    Axes refuses a locked account's password there as everywhere (its authentication backend),
    but the lockout flag it sets lands on DRF's request wrapper, out of AxesMiddleware's
    sight, so the view answers a plain 401. A 401 from a locked account or address becomes
    the 429 lockout answer here. Costs a query only on failed sign-ins.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or not _is_json_login(request):
            return self.get_response(request)
        request.body  # noqa: B018 (read now, so it can still be read once DRF has parsed it)
        response = self.get_response(request)
        if response.status_code == 401:
            credentials = {settings.AXES_USERNAME_FORM_FIELD: _posted_username(request)}
            if not AxesProxyHandler.is_allowed(request, credentials):
                return lockout_response(request, credentials=credentials)
        return response


def _posted_username(request):
    """The username in a JSON or form body."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:
            return None
        username = data.get("username") if isinstance(data, dict) else None
        return username if isinstance(username, str) else None
    if request.content_type == "application/x-www-form-urlencoded":
        return request.POST.get("username")
    return None
