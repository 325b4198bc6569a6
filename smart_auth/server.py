"""The oauthlib server class (OAUTH2_PROVIDER["OAUTH2_SERVER_CLASS"]).

`SmartServer` gives each grant its access token lifetime: a backend service's token
(client_credentials) lives SMART["BACKEND_TOKEN_LIFETIME"] seconds (SMART: short-lived, 300
at most advised), every other one ACCESS_TOKEN_EXPIRE_SECONDS. oauthlib's BearerToken asks a
callable `expires_in(request)` per token, and DOT stores the same `expires_in` as the row's
expiry, so the JWT's `exp` and the database agree.
"""

from django.conf import settings
from oauthlib.openid import Server


class SmartServer(Server):
    def __init__(self, request_validator, token_expires_in=None, *args, **kwargs):
        default_lifetime = token_expires_in

        def expires_in(request):
            if request.grant_type == "client_credentials":
                return settings.SMART["BACKEND_TOKEN_LIFETIME"]
            return default_lifetime(request) if callable(default_lifetime) else default_lifetime

        super().__init__(request_validator, expires_in, *args, **kwargs)
