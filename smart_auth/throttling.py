"""Per-client rate limit of the FHIR API, as a DRF throttle (REST_FRAMEWORK's
DEFAULT_THROTTLE_CLASSES).

The budget belongs to the app: the `client_id` of the access token, which SmartBearerAuthentication
put on the request as the AccessPolicy. Requests without an app behind them (a staff session,
the registry API's admin credentials, anonymous metadata) are not limited here. The limit is
the app's `api_rate_limit`, else SMART["API_RATE_LIMIT"]. A refused request raises DRF's
Throttled, which the FHIR API renders as a 429 OperationOutcome (code `throttled`) with
Retry-After.
"""

from functools import partial

from rest_framework.throttling import BaseThrottle

from fhir_api.policy import AccessPolicy

from . import ratelimit

SCOPE = "api"


class ClientRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        policy = request.auth
        if not isinstance(policy, AccessPolicy) or not policy.client_id:
            return True
        rate = partial(ratelimit.client_rate, SCOPE, policy.client_id)
        self.decision = ratelimit.acquire(SCOPE, policy.client_id, rate)
        return self.decision.allowed

    def wait(self):
        return self.decision.retry_after
