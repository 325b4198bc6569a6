"""Rate limits of the token endpoint (/smart/token), as a middleware in front of DOT's view.

Two budgets, so that a stranger cannot spend a real app's:

- **per client** (SMART["TOKEN_RATE_LIMIT"], or the app's `token_rate_limit`): the token
  requests that *succeed* for the client the request names (Basic credentials, a client
  assertion's `iss`, or `client_id`). A request that fails (a wrong secret, a forged or stale
  code) is not charged to it, so naming an app you cannot authenticate as costs the app nothing.
- **per address** (SMART["TOKEN_ADDRESS_RATE_LIMIT"]): the requests from one client address
  that fail, whatever client they name or if they name none. This is what stops a stranger:
  guessing codes, secrets or client ids soon runs out, from one address.

Both budgets are checked before the view runs (either can refuse) and charged once the
outcome is known. A refusal is 429 with Retry-After and an RFC 6749-style body whose `error`
is `slow_down`: the token endpoint's registered code for "you are calling too fast" (RFC 8628
§3.5), so a client backs off instead of treating it as a bad grant.
"""

from functools import partial

from django.http import JsonResponse
from django.urls import reverse

from . import ratelimit
from .introspection import caller_client_id

CLIENT_SCOPE = "token"
ADDRESS_SCOPE = "token-address"


class TokenRateLimitMiddleware:
    """Applies `limit_token_request` to POST /smart/token; everything else passes through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info == reverse("smart_auth:token"):
            return limit_token_request(request, self.get_response)
        return self.get_response(request)


def limit_token_request(request, get_response):
    address = request.META.get("REMOTE_ADDR") or "unknown"
    address_rate = partial(ratelimit.default_rate, ADDRESS_SCOPE)
    by_address = ratelimit.check(ADDRESS_SCOPE, address, address_rate)
    if not by_address.allowed:
        description = "Too many failed token requests from this address"
        return too_many_requests(by_address.retry_after, description)
    client_id = (caller_client_id(request) or "")[:200]
    client_rate = partial(ratelimit.client_rate, CLIENT_SCOPE, client_id)
    if client_id:
        by_client = ratelimit.check(CLIENT_SCOPE, client_id, client_rate)
        if not by_client.allowed:
            description = "Too many token requests by this client"
            return too_many_requests(by_client.retry_after, description)
    response = get_response(request)
    if response.status_code >= 400:
        ratelimit.acquire(ADDRESS_SCOPE, address, address_rate)
    elif client_id:
        ratelimit.acquire(CLIENT_SCOPE, client_id, client_rate)
    return response


def too_many_requests(retry_after, description):
    body = {"error": "slow_down", "error_description": f"{description}; retry later"}
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    return JsonResponse(body, status=429, headers=headers)
