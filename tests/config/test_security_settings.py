"""Security settings as a production deployment gets them from its environment."""

import json

from tests.config.test_settings import PRODUCTION, manage

SHOW = (
    "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) "
    "for n in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
    "'CSRF_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE', "
    "'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'TRUSTED_PROXIES', 'AXES_FAILURE_LIMIT', "
    "'LOGIN_ADDRESS_FAILURE_LIMIT']} | {'SMART': {k: s.SMART[k] for k in "
    "['TOKEN_RATE_LIMIT', 'TOKEN_ADDRESS_RATE_LIMIT', 'API_RATE_LIMIT']}}))"
)


def shown(env):
    result = manage("shell", "-c", SHOW, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_over_https_cookies_are_secure_httponly_lax_and_hsts_is_on():
    values = shown(PRODUCTION)
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"] and values["CSRF_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_SSL_REDIRECT"] is True


def test_abuse_limits_come_from_the_environment():
    values = shown(
        PRODUCTION
        | {
            "TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7",
            "LOGIN_FAILURE_LIMIT": "7",
            "LOGIN_ADDRESS_FAILURE_LIMIT": "50",
            "SMART_TOKEN_RATE_LIMIT": "60/min",
            "SMART_TOKEN_ADDRESS_RATE_LIMIT": "30/min",
            "SMART_API_RATE_LIMIT": "100000/hour",
        }
    )
    assert values["TRUSTED_PROXIES"] == ["10.0.0.0/8", "192.0.2.7"]
    assert values["AXES_FAILURE_LIMIT"] == 7 and values["LOGIN_ADDRESS_FAILURE_LIMIT"] == 50
    assert values["SMART"] == {
        "TOKEN_RATE_LIMIT": "60/min",
        "TOKEN_ADDRESS_RATE_LIMIT": "30/min",
        "API_RATE_LIMIT": "100000/hour",
    }


def test_the_defaults_trust_no_proxy():
    assert shown(PRODUCTION)["TRUSTED_PROXIES"] == []


def test_a_trusted_proxy_that_is_not_an_address_fails_clearly():
    result = manage("check", env=PRODUCTION | {"TRUSTED_PROXIES": "proxy.internal"})
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr and "proxy.internal" in result.stderr
