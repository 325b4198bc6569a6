"""The client's address, correct behind the reverse proxies named in settings.TRUSTED_PROXIES.

Login lockouts, rate limits and the audit trail all key on the address a request came from.
Behind a TLS-terminating proxy REMOTE_ADDR is the proxy's, the same for everyone, while
`X-Forwarded-For` is whatever the client wrote plus what each proxy appended. Only the hops
appended by proxies we trust can be believed, so the header is read from the right: the first
address that is not a trusted proxy is the client. With no trusted proxies (the default) the
header is ignored and REMOTE_ADDR is the client, so nobody can choose their own address.

`TrustedProxyMiddleware` (first in MIDDLEWARE) puts the result in REMOTE_ADDR, so everything
downstream (django-axes, DRF throttles, the audit trail's `network.address`, logs) sees the
same address without knowing about proxies. The proxy's own address is kept in
META["ORIGINAL_REMOTE_ADDR"].
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

ORIGINAL = "ORIGINAL_REMOTE_ADDR"


def client_address(request):
    """The address of the client that sent `request`, or None when the server was not told."""
    meta = request.META
    peer = meta.get(ORIGINAL) or meta.get("REMOTE_ADDR") or None
    networks = trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    if not networks or not _is_trusted(parse_address(peer), networks):
        return peer
    address = peer
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        parsed = parse_address(hop)
        if parsed is None:
            # A trusted proxy always appends a real address: anything else is the client's.
            break
        address = str(parsed)
        if not _is_trusted(parsed, networks):
            break
    return address


class TrustedProxyMiddleware:
    """Sets REMOTE_ADDR to `client_address(request)` for every later middleware and view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if getattr(settings, "TRUSTED_PROXIES", None) and ORIGINAL not in request.META:
            request.META[ORIGINAL] = request.META.get("REMOTE_ADDR", "")
            request.META["REMOTE_ADDR"] = client_address(request) or ""
        return self.get_response(request)


@lru_cache(maxsize=8)
def trusted_networks(entries):
    """TRUSTED_PROXIES entries (addresses or CIDR networks) as ip_network objects."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry)


def parse_address(text):
    """An IP address from REMOTE_ADDR or an X-Forwarded-For hop (which may carry a port)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address, networks):
    if address is None:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks if network.version == address.version)
