"""Apps' public keys (smart_auth/jwks.py): what a registered JWKS may hold, and fetching a
JWKS URL safely: timeout, size cap, JSON only, no private addresses, the resolved address
pinned, Cache-Control honoured, and an unknown kid refetching at most once a minute."""

import socket
import time

import pytest
from django.core.cache import cache

from smart_auth import jwks
from smart_auth.jwks import JwksError, check_jwks, check_jwks_uri, is_public_address
from tests.smart_support import (
    JwksServer,
    make_backend_app,
    public_jwk,
    self_signed_tls,
    signing_key,
)

pytestmark = pytest.mark.django_db

RSA_KEY = signing_key("RS384")
EC_KEY = signing_key("ES384")


@pytest.fixture
def private_addresses(settings):
    """The test servers listen on 127.0.0.1, which production would refuse."""
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}


@pytest.fixture
def server(private_addresses):
    with JwksServer({"keys": [public_jwk(RSA_KEY, "k1")]}) as running:
        yield running


# --- A registered JWKS ------------------------------------------------------------------------


def test_public_rsa_and_ec_keys_can_be_registered():
    document = {
        "keys": [
            public_jwk(RSA_KEY, "rsa", alg="RS384", use="sig"),
            public_jwk(EC_KEY, "ec", alg="ES384", key_ops=["verify"]),
            public_jwk(signing_key("ES256"), "p256"),
        ]
    }
    assert check_jwks(document) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"d": "AQAB"},
            "key 1: private key members (d) must not be sent; send the public key",
        ),
        (
            {"kty": "oct", "k": "c2VjcmV0"},
            "key 1: symmetric keys (kty oct) are not accepted; register a public RSA or EC key",
        ),
        ({"kty": "OKP"}, "key 1: kty must be RSA or EC, not 'OKP'"),
        ({"kid": ""}, "key 1: every key needs a kid"),
        ({"alg": "HS256"}, "key 1: alg must be one of RS384, ES384, RS256, ES256, not 'HS256'"),
        ({"alg": "ES384"}, "key 1: alg ES384 does not fit this RSA key"),
        ({"use": "enc"}, "key 1: use must be sig, and key_ops (if given) must include verify"),
        ({"n": "not-a-modulus!"}, "key 1: not a usable RSA key"),
    ],
)
def test_unusable_keys_are_refused_with_the_reason(change, message):
    errors = check_jwks({"keys": [{**public_jwk(RSA_KEY, "k1"), **change}]})
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_other_jwks_problems_are_refused():
    assert check_jwks([]) == ['jwks must be a JSON object {"keys": [...]}']
    assert check_jwks({"keys": []}) == ["jwks must hold at least one key"]
    assert check_jwks({"keys": ["x"]}) == ["key 1: a key must be a JSON object"]
    twice = {"keys": [public_jwk(RSA_KEY, "same"), public_jwk(EC_KEY, "same")]}
    assert check_jwks(twice) == ["key 2: kid 'same' is used twice"]
    p521 = {"keys": [{**public_jwk(EC_KEY, "k1"), "crv": "P-521"}]}
    assert check_jwks(p521) == ["key 1: crv must be P-256 or P-384, not 'P-521'"]


def test_weak_rsa_keys_are_refused():
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    assert check_jwks({"keys": [public_jwk(weak, "k1")]}) == [
        "key 1: RSA keys must have at least 2048 bits"
    ]


# --- A JWKS URL -------------------------------------------------------------------------------


def test_jwks_urls_must_be_absolute_and_public(settings):
    assert check_jwks_uri("https://keys.example.org/jwks.json") is None
    for uri, problem in [
        ("ftp://keys.example.org/jwks.json", "the scheme must be https or http"),
        ("https:///jwks.json", "an absolute URL with a host is required"),
        ("https://user:pw@keys.example.org/jwks.json", "may not carry a user name or password"),
        ("https://keys.example.org/jwks.json#k", "may not have a fragment"),
        ("https://127.0.0.1/jwks.json", "private, loopback or reserved"),
        ("https://[::1]/jwks.json", "private, loopback or reserved"),
        ("https://10.1.2.3/jwks.json", "private, loopback or reserved"),
        ("https://169.254.169.254/latest", "private, loopback or reserved"),
        ("https://localhost/jwks.json", "private, loopback or reserved"),
    ]:
        message = check_jwks_uri(uri)
        assert message and problem in message, (uri, message)
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    assert check_jwks_uri("http://127.0.0.1:8080/jwks.json") is None


def test_http_jwks_urls_only_where_http_redirect_uris_are_allowed(settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    }
    assert "the scheme must be https" in check_jwks_uri("http://keys.example.org/jwks.json")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("224.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_only_globally_routable_addresses_are_public(address, public):
    assert is_public_address(address) is public


def test_a_name_resolving_to_a_private_address_is_not_fetched(monkeypatch):
    """DNS may answer anything for a public-looking name: the answer is what is checked."""
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns("127.0.0.1"))
    with pytest.raises(JwksError) as error:
        jwks.fetch_jwks("https://keys.example.org/jwks.json")
    assert str(error.value) == (
        "could not fetch the client's JWKS: keys.example.org resolves to a private, loopback "
        "or reserved address (127.0.0.1)"
    )


def test_the_connection_goes_to_the_checked_address_under_the_real_name(server, monkeypatch):
    """Resolved once, connected to that address, with Host still the URL's: no second lookup
    that a rebinding DNS server could answer differently."""
    port = server.url.split(":")[2].split("/")[0]
    lookups = []
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns("127.0.0.1", lookups))
    text, _max_age = jwks.fetch_jwks(f"http://keys.example.org:{port}/jwks.json")
    assert '"kid":"k1"' in text
    assert [host for host in lookups if host != "127.0.0.1"] == ["keys.example.org"]
    assert server.hosts == [f"keys.example.org:{port}"]


@pytest.mark.parametrize(
    ("certified_name", "works"), [("keys.example.org", True), ("other.example.org", False)]
)
def test_https_checks_the_certificate_against_the_url_host(
    private_addresses, monkeypatch, tmp_path, certified_name, works
):
    """Connecting to the checked IP still verifies TLS for the URL's name (SNI and the
    certificate), not for the address."""
    server_tls, client_tls = self_signed_tls(certified_name, tmp_path)
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns("127.0.0.1"))
    monkeypatch.setattr(jwks.ssl, "create_default_context", lambda: client_tls)
    with JwksServer({"keys": [public_jwk(RSA_KEY, "k1")]}, tls=server_tls) as server:
        url = f"https://keys.example.org:{server.port}/jwks.json"
        if works:
            assert '"kid":"k1"' in jwks.fetch_jwks(url)[0]
        else:
            with pytest.raises(JwksError) as error:
                jwks.fetch_jwks(url)
            assert str(error.value) == "could not fetch the client's JWKS: TLS error"


def fake_dns(address, lookups=None):
    def getaddrinfo(host, port, *args, **kwargs):
        if lookups is not None:
            lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


def test_a_fetch_returns_the_document_and_how_long_to_keep_it(server):
    text, max_age = jwks.fetch_jwks(server.url)
    assert jwks.parse_jwks_text(text)[0].kid == "k1"
    assert max_age == 3600  # no Cache-Control: the configured default
    assert server.accepts == ["application/json"]
    server.headers["Cache-Control"] = "public, max-age=120"
    assert jwks.fetch_jwks(server.url)[1] == 120
    server.headers["Cache-Control"] = "no-store"
    assert jwks.fetch_jwks(server.url)[1] == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"raw": "<html>hello</html>"}, "the response is not JSON"),
        ({"raw": '["keys"]'}, 'not a JSON object {"keys": [...]}'),
        ({"status": 404}, "HTTP 404"),
        ({"status": 302}, "HTTP 302"),  # redirects are not followed
        ({"raw": '{"keys": [], "pad": "' + "x" * 70_000 + '"}'}, "larger than 65536 bytes"),
    ],
)
def test_bad_responses_are_clear_errors(server, setup, message):
    for name, value in setup.items():
        setattr(server, name, value)
    with pytest.raises(JwksError) as error:
        jwks.fetch_jwks(server.url)
    assert str(error.value) == f"could not fetch the client's JWKS: {message}"


def test_a_body_too_big_without_content_length_is_cut_off(server):
    server.raw = '{"keys": [], "pad": "' + "x" * 70_000 + '"}'
    server.send_length = False
    with pytest.raises(JwksError, match="larger than 65536 bytes"):
        jwks.fetch_jwks(server.url)


def test_a_slow_server_times_out(server, settings):
    settings.SMART = {**settings.SMART, "JWKS_FETCH_TIMEOUT": 0.3}
    server.delay = 2
    started = time.monotonic()
    with pytest.raises(JwksError) as error:
        jwks.fetch_jwks(server.url)
    assert str(error.value) == "could not fetch the client's JWKS: timeout"
    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_a_connection_error(private_addresses):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(JwksError) as error:
        jwks.fetch_jwks(f"http://127.0.0.1:{port}/jwks.json")
    assert str(error.value) == "could not fetch the client's JWKS: connection failed"


def test_loopback_is_refused_unless_allowed(server, settings):
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": False}
    with pytest.raises(JwksError, match="private, loopback or reserved"):
        jwks.fetch_jwks(server.url)
    assert server.requests == 0


# --- The shared cache and refetch limits ------------------------------------------------------


def test_a_fetched_jwks_is_cached_for_its_max_age(server):
    server.headers["Cache-Control"] = "max-age=600"
    first = jwks.get_remote_jwks(server.url)
    assert jwks.get_remote_jwks(server.url) == first
    assert server.requests == 1
    assert cache.get(jwks._cache_key("document", server.url)) == first


def test_no_store_is_never_cached(server):
    server.headers["Cache-Control"] = "no-store"
    jwks.get_remote_jwks(server.url)
    jwks.get_remote_jwks(server.url)
    assert server.requests == 2


def test_a_failed_fetch_is_not_retried_at_once(server):
    server.status = 500
    for _ in range(3):
        with pytest.raises(JwksError, match="HTTP 500"):
            jwks.get_remote_jwks(server.url)
    assert server.requests == 1


def test_an_unknown_kid_refetches_once_a_minute_at_most(server):
    """The app rotated its keys: a kid missing from the cached JWKS triggers one refetch,
    but a stranger inventing kids cannot make the server fetch again and again."""
    app = make_backend_app(jwks_uri=server.url)
    assert jwks.find_key(app, "k1", "RS384") is not None
    server.document = {"keys": [public_jwk(RSA_KEY, "k2")]}
    with pytest.raises(JwksError, match="no key with kid 'k2'"):
        jwks.find_key(app, "k2", "RS384")  # fetched within the minute: not again
    assert server.requests == 1
    cache.delete(jwks._cache_key("fetched", server.url))  # a minute later
    assert jwks.find_key(app, "k2", "RS384") is not None
    assert server.requests == 2
    for _ in range(3):
        with pytest.raises(JwksError, match="no key with kid 'k3'"):
            jwks.find_key(app, "k3", "RS384")
    assert server.requests == 2


def test_forget_drops_the_cached_document(server):
    jwks.get_remote_jwks(server.url)
    jwks.forget(server.url)
    jwks.get_remote_jwks(server.url)
    assert server.requests == 2


def test_keys_are_parsed_once_per_document():
    jwks.parse_jwks_text.cache_clear()
    app = make_backend_app(jwks={"keys": [public_jwk(RSA_KEY, "k1")]})
    for _ in range(5):
        jwks.find_key(app, "k1", "RS384")
    info = jwks.parse_jwks_text.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_a_fetched_document_with_private_material_lends_no_key(server):
    server.document = {"keys": [{**public_jwk(RSA_KEY, "k1"), "d": "AQAB"}]}
    app = make_backend_app(jwks_uri=server.url)
    with pytest.raises(JwksError, match="no key with kid 'k1'"):
        jwks.find_key(app, "k1", "RS384")


def test_allowing_private_addresses_in_production_is_flagged(settings):
    from smart_auth.checks import check_jwks_addresses

    settings.DEBUG = False
    assert check_jwks_addresses(None) == []
    settings.SMART = {**settings.SMART, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    assert [warning.id for warning in check_jwks_addresses(None)] == ["smart_auth.W001"]
