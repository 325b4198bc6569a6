"""The client address behind reverse proxies: X-Forwarded-For is believed only as far as the
proxies named in TRUSTED_PROXIES appended it."""

import pytest
from django.test import RequestFactory

from config.proxies import client_address


def address(remote, forwarded=None, **headers):
    meta = {"REMOTE_ADDR": remote, **headers}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **meta))


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert address("192.0.2.1", "203.0.113.9") == "192.0.2.1"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # The proxy appended the client it saw.
        ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
        # The client forged a first hop: only the one our proxy appended counts.
        ("10.0.0.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two trusted proxies in a row, then the client.
        ("10.0.0.1", "203.0.113.9, 10.0.0.2", "203.0.113.9"),
        # A request straight from the internet, not through the proxy: header ignored.
        ("198.51.100.5", "203.0.113.9", "198.51.100.5"),
        # A port, or garbage the client wrote beyond a proxy-appended hop.
        ("10.0.0.1", "203.0.113.9:5555", "203.0.113.9"),
        ("10.0.0.1", "garbage, 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "", "10.0.0.1"),
        # IPv6, and an IPv4-mapped proxy address.
        ("10.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:10.0.0.1", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_right(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address(remote, forwarded) == expected


def test_the_middleware_gives_everyone_the_client_address(settings, client):
    """The audit trail, DRF and axes read REMOTE_ADDR: the middleware resolves it once."""
    from config.proxies import ORIGINAL, TrustedProxyMiddleware

    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    seen = {}

    def view(request):
        seen.update(remote=request.META["REMOTE_ADDR"], proxy=request.META[ORIGINAL])
        seen["again"] = client_address(request)

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    TrustedProxyMiddleware(view)(request)
    assert seen == {"remote": "203.0.113.9", "proxy": "10.0.0.1", "again": "203.0.113.9"}
