"""The public keys of apps that authenticate with `private_key_jwt`: an inline JWKS, or a JWKS
URL this server fetches (SMART Backend Services: both SHALL be supported).

Fetching a URL an app chose is a server-side request to wherever it points, so `fetch_jwks`
is careful: http(s) only (plain http only where redirect URIs may be http, i.e. development),
no redirects, a timeout over the whole exchange, a size cap, and never a loopback, private,
link-local, multicast or reserved address unless SMART["JWKS_ALLOW_PRIVATE_ADDRESSES"]. The
host is resolved once, every address checked, and the connection made to a checked address
with the real name kept for Host, SNI and the certificate, so a second DNS answer cannot
redirect it (DNS rebinding).

A fetched document is kept in Django's cache (shared by every worker) for the app's
Cache-Control max-age, capped by SMART["JWKS_CACHE_SECONDS"]. An assertion naming a `kid`
the cached document lacks refetches it, at most once per SMART["JWKS_REFETCH_SECONDS"] per
URL, so a stranger cannot make this server fetch in a loop; a failed fetch is remembered as
long. Parsing JWK members into key objects is memoised by document content: the same input
always gives the same keys, so that memo is no state another process would need.
"""

import hashlib
import ipaddress
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.cache import cache
from jwt import PyJWK, PyJWTError
from oauth2_provider.settings import oauth2_settings

# The signing algorithms a client assertion may use (SMART: RS384 and ES384 required, RS256
# and ES256 accepted); nothing else, so never `none`, HMAC, PSS or EdDSA.
ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
# The curve each ECDSA algorithm signs with, and the key type of each algorithm family.
CURVES = {"ES256": "P-256", "ES384": "P-384"}
KEY_TYPES = {"RS": "RSA", "ES": "EC"}
# JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MIN_RSA_BITS = 2048
# NAT64 (RFC 6052) addresses carry an IPv4 address in their last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class JwksError(Exception):
    """The app's keys cannot be had or used; the message says why, for the app's developers."""


@dataclass(frozen=True)
class PublicKey:
    """One verification key of an app: its JWK identity and the parsed key object."""

    kid: str
    kty: str
    crv: str
    alg: str
    verifies: bool
    key: object

    def fits(self, alg):
        """True if this key may check a signature made with `alg` (RFC 7517 §4.2-4.4)."""
        return (
            self.verifies
            and self.kty == KEY_TYPES.get(alg[:2])
            and self.crv == CURVES.get(alg, "")
            and self.alg in ("", alg)
        )


# --- Settings -------------------------------------------------------------------------------


def _setting(name):
    return settings.SMART[name]


def allowed_schemes():
    """https, plus http where redirect URIs may be http (development)."""
    schemes = oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES
    return [scheme for scheme in ("https", "http") if scheme in schemes]


# --- Checking a JWKS (registration) and reading one (verification) --------------------------


def check_jwks(document):
    """Error messages for a JWKS that cannot be registered, [] if it can.

    `{"keys": [...]}` of public RSA (2048 bits or more) or EC P-256/P-384 keys, each with a
    `kid`, no two alike. Private or symmetric key material is refused outright: an app must
    never hand its private key to the server.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return ['jwks must be a JSON object {"keys": [...]}']
    if not document["keys"]:
        return ["jwks must hold at least one key"]
    if len(canonical_text(document)) > _setting("JWKS_MAX_BYTES"):
        return [f"jwks must be smaller than {_setting('JWKS_MAX_BYTES')} bytes"]
    errors = []
    kids = set()
    for position, jwk in enumerate(document["keys"]):
        problem = _key_problem(jwk)
        if problem is None and jwk["kid"] in kids:
            problem = f"kid {jwk['kid']!r} is used twice"
        if problem:
            errors.append(f"key {position + 1}: {problem}")
        elif isinstance(jwk, dict):
            kids.add(jwk["kid"])
    return errors


def _key_problem(jwk):
    if not isinstance(jwk, dict):
        return "a key must be a JSON object"
    private = [member for member in PRIVATE_MEMBERS if member in jwk]
    if jwk.get("kty") == "oct":
        return "symmetric keys (kty oct) are not accepted; register a public RSA or EC key"
    if private:
        return f"private key members ({', '.join(private)}) must not be sent; send the public key"
    if jwk.get("kty") not in ("RSA", "EC"):
        return f"kty must be RSA or EC, not {jwk.get('kty')!r}"
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return "every key needs a kid"
    if jwk["kty"] == "EC" and jwk.get("crv") not in CURVES.values():
        return f"crv must be P-256 or P-384, not {jwk.get('crv')!r}"
    alg = jwk.get("alg")
    if alg is not None and alg not in ALGORITHMS:
        return f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}"
    if alg is not None and (KEY_TYPES[alg[:2]], CURVES.get(alg)) != (jwk["kty"], jwk.get("crv")):
        return f"alg {alg} does not fit this {jwk['kty']} key"
    try:
        key = _parse_key(jwk)
    except JwksError as error:
        return str(error)
    if not key.verifies:
        return "use must be sig, and key_ops (if given) must include verify"
    if jwk["kty"] == "RSA" and key.key.key_size < MIN_RSA_BITS:
        return f"RSA keys must have at least {MIN_RSA_BITS} bits"
    return None


def _parse_key(jwk):
    """A PublicKey from one JWK, or JwksError. Private members were refused before."""
    try:
        parsed = PyJWK(jwk)
    except (PyJWTError, ValueError, TypeError, KeyError) as error:
        raise JwksError(f"not a usable {jwk.get('kty')} key: {error}") from None
    key_ops = jwk.get("key_ops")
    verifies = jwk.get("use", "sig") == "sig" and (
        key_ops is None or (isinstance(key_ops, list) and "verify" in key_ops)
    )
    return PublicKey(
        kid=jwk.get("kid") if isinstance(jwk.get("kid"), str) else "",
        kty=jwk["kty"],
        crv=jwk.get("crv", "") if jwk["kty"] == "EC" else "",
        alg=jwk.get("alg", "") if isinstance(jwk.get("alg"), str) else "",
        verifies=verifies,
        key=parsed.key,
    )


@lru_cache(maxsize=512)
def parse_jwks_text(text):
    """The verification keys in a JWKS document (JSON text), skipping keys that cannot verify.

    Memoised by content, so a key is parsed once per process however often it is used.
    """
    try:
        document = json.loads(text)
    except ValueError:
        raise JwksError("the client's JWKS is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('the client\'s JWKS is not a JSON object {"keys": [...]}')
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC"):
            continue
        if any(member in jwk for member in PRIVATE_MEMBERS):
            continue  # published private material is never trusted
        try:
            keys.append(_parse_key(jwk))
        except JwksError:
            continue
    return tuple(keys)


def canonical_text(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# --- An app's keys --------------------------------------------------------------------------


def find_key(app, kid, alg):
    """The one key of `app` with this `kid` that fits `alg`, or JwksError.

    Zero or several candidates are both refused: choosing among several could let a key
    meant for something else verify. A JWKS URL is refetched once when nothing matches
    (the app may have rotated its keys), within the refetch limit.
    """
    matches = _matching(app_keys(app), kid, alg)
    if not matches and not app.jwks and app.jwks_uri:
        fresh = app_keys(app, refresh=True)
        if fresh is not None:
            matches = _matching(fresh, kid, alg)
    if not matches:
        raise JwksError(f"no key with kid {kid!r} for {alg} in the client's JWKS")
    if len(matches) > 1:
        raise JwksError(f"several keys with kid {kid!r} fit {alg} in the client's JWKS")
    return matches[0].key


def _matching(keys, kid, alg):
    return [key for key in keys if key.kid == kid and key.fits(alg)]


def app_keys(app, *, refresh=False):
    """The verification keys of `app`: its inline JWKS, else those at its JWKS URL.

    With `refresh`, the URL is fetched again unless it was fetched within the refetch
    interval, in which case None is returned (nothing new to look at).
    """
    if app.jwks:
        return parse_jwks_text(canonical_text(app.jwks))
    if not app.jwks_uri:
        raise JwksError("the client has registered no public keys (jwks or jwks_uri)")
    text = get_remote_jwks(app.jwks_uri, refresh=refresh)
    return None if text is None else parse_jwks_text(text)


# --- A JWKS URL: cache and refetch limits ---------------------------------------------------


def _cache_key(kind, url):
    return f"smart:jwks:{kind}:{hashlib.sha256(url.encode()).hexdigest()}"


def get_remote_jwks(url, *, refresh=False):
    """The JWKS document at `url` (JSON text), from the shared cache or fetched.

    `refresh`: fetch again even if cached, but only if no fetch happened within
    SMART["JWKS_REFETCH_SECONDS"]; returns None when that limit holds.
    """
    interval = _setting("JWKS_REFETCH_SECONDS")
    if refresh:
        if not cache.add(_cache_key("fetched", url), True, timeout=interval):
            return None
    else:
        text = cache.get(_cache_key("document", url))
        if text is not None:
            return text
        failure = cache.get(_cache_key("failure", url))
        if failure is not None:
            raise JwksError(failure)
    try:
        text, max_age = fetch_jwks(url)
    except JwksError as error:
        cache.set(_cache_key("failure", url), str(error), timeout=interval)
        raise
    cache.set(_cache_key("fetched", url), True, timeout=interval)
    lifetime = min(max_age, _setting("JWKS_CACHE_SECONDS"))
    if lifetime > 0:
        cache.set(_cache_key("document", url), text, timeout=lifetime)
    return text


def forget(url):
    """Drop what the cache holds for `url`: its keys changed, or the app's registration did."""
    if url:
        cache.delete_many([_cache_key(kind, url) for kind in ("document", "failure", "fetched")])


def cache_lifetime(cache_control):
    """Seconds a response may be cached by its Cache-Control header (None: no header).

    no-store and no-cache mean not at all (SMART: a JWKS SHALL NOT be cached longer than
    its Cache-Control allows).
    """
    if cache_control is None:
        return None
    directives = cache_control.lower()
    if "no-store" in directives or "no-cache" in directives:
        return 0
    match = _MAX_AGE_RE.search(directives)
    return int(match.group(1)) if match else None


# --- Fetching -------------------------------------------------------------------------------


def check_jwks_uri(uri):
    """Error message for a JWKS URL that cannot be registered, else None.

    The address checks at fetch time still apply; here a name is not resolved, but a
    literal private address or `localhost` is refused at once.
    """
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return f"{uri}: not a valid URL"
    if parts.scheme not in allowed_schemes():
        return f"{uri}: the scheme must be {' or '.join(allowed_schemes())}"
    if not parts.hostname:
        return f"{uri}: an absolute URL with a host is required"
    if parts.username is not None or parts.password is not None:
        return f"{uri}: a JWKS URL may not carry a user name or password"
    if parts.fragment or "#" in uri:
        return f"{uri}: a JWKS URL may not have a fragment"
    if not _setting("JWKS_ALLOW_PRIVATE_ADDRESSES") and _names_private_host(parts.hostname):
        return f"{uri}: the host is a private, loopback or reserved address"
    return None


def _names_private_host(hostname):
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return not is_public_address(hostname)
    except ValueError:
        return False  # a name: checked when resolved


def is_public_address(text):
    """True for a globally routable IP address; ValueError if `text` is not an address.

    IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by the
    embedded address, so an AAAA record cannot smuggle in 127.0.0.1 or 169.254.169.254.
    """
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return all(part.is_global for part in address.teredo)
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    return address.is_global and not address.is_multicast


def resolve(hostname, port):
    """The addresses to connect to for `hostname`, each checked; JwksError if any is not public.

    One private answer among public ones refuses the host: picking the public one would still
    let a split answer point a later lookup inside.
    """
    try:
        answers = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise JwksError(f"could not fetch the client's JWKS: cannot resolve {hostname}") from error
    addresses = list(dict.fromkeys(answer[4][0] for answer in answers))
    if not _setting("JWKS_ALLOW_PRIVATE_ADDRESSES"):
        for address in addresses:
            if not is_public_address(address):
                raise JwksError(
                    f"could not fetch the client's JWKS: {hostname} resolves to a private, "
                    f"loopback or reserved address ({address})"
                )
    if not addresses:
        raise JwksError(f"could not fetch the client's JWKS: {hostname} has no address")
    return addresses


def fetch_jwks(url):
    """GET the JWKS at `url`: (JSON text, seconds it may be cached), or JwksError.

    One deadline (SMART["JWKS_FETCH_TIMEOUT"]) covers resolving, connecting and reading,
    whatever the number of addresses; the body is read up to SMART["JWKS_MAX_BYTES"].
    """
    problem = check_jwks_uri(url)
    if problem is not None:
        raise JwksError(f"could not fetch the client's JWKS: {problem}")
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + _setting("JWKS_FETCH_TIMEOUT")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last_error = "timeout"
    for address in resolve(parts.hostname, port):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        pool = _pool(parts, address, port, remaining)
        try:
            response = pool.urlopen(
                "GET",
                path,
                headers={"Host": parts.netloc, "Accept": "application/json"},
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                return _read(response, deadline)
            finally:
                response.release_conn()
        except urllib3.exceptions.NewConnectionError:
            last_error = "connection failed"
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            last_error = "timeout"
        except urllib3.exceptions.HTTPError as error:
            last_error = _describe_transport_error(error)
        finally:
            pool.close()
    raise JwksError(f"could not fetch the client's JWKS: {last_error}")


def _pool(parts, address, port, timeout):
    """A one-connection pool to the checked `address`, speaking to the URL's host name."""
    options = {
        "host": address,
        "port": port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if parts.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            **options,
            ssl_context=ssl.create_default_context(),
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
        )
    return urllib3.HTTPConnectionPool(**options)


def _read(response, deadline):
    if response.status != 200:
        raise JwksError(f"could not fetch the client's JWKS: HTTP {response.status}")
    limit = _setting("JWKS_MAX_BYTES")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise JwksError(f"could not fetch the client's JWKS: larger than {limit} bytes")
    body = b""
    while True:
        if time.monotonic() > deadline:
            raise JwksError("could not fetch the client's JWKS: timeout")
        chunk = response.read1(8192)
        if not chunk:
            break
        body += chunk
        if len(body) > limit:
            raise JwksError(f"could not fetch the client's JWKS: larger than {limit} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise JwksError("could not fetch the client's JWKS: the response is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('could not fetch the client\'s JWKS: not a JSON object {"keys": [...]}')
    max_age = cache_lifetime(response.headers.get("Cache-Control"))
    if max_age is None:
        max_age = _setting("JWKS_CACHE_SECONDS")
    return canonical_text(document), max_age


def _describe_transport_error(error):
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, (urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(reason, (ssl.SSLError, urllib3.exceptions.SSLError)):
        return "TLS error"
    return "connection failed"
