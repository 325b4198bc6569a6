"""What the workloads send, made in the driver process with the product's own code and database:
registered apps, a clinician, authorization codes, access and refresh tokens, client assertions.

Call only after `harness.setup_django`. Codes, refresh tokens and client assertions are
single-use, so every run gets fresh ones:

- an authorization is made once per kind through the real pages (/smart/authorize, consent,
  patient picker) with Django's test client; its Grant and LaunchContext rows are then copied
  with new codes and PKCE challenges (`clone_codes`), which is how thousands of codes exist
  within the 60 s a code lives;
- tokens come from exchanging such codes at the real /smart/token (in-process);
- client assertions are signed here with the app's registered ES384 key.
"""

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

REDIRECT_URI = "https://bench.example.org/callback"
UNTHROTTLED = "1000000/min"
# What a SMART app asks for: the code-exchange, refresh and patient-search tokens.
PATIENT_SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
# A clinician's app: reads, searches and writes across patients.
USER_SCOPE = "openid fhirUser user/*.cruds"
SYSTEM_SCOPE = "system/*.rs"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class App:
    client_id: str
    secret: str | None = None

    @property
    def basic(self):
        pair = f"{self.client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@dataclass
class Template:
    """One real authorization, not yet exchanged, whose rows `clone_codes` copies."""

    grant_id: int
    scope: str


def create_clinician():
    """A clinician user linked to a stored Practitioner."""
    from django.contrib.auth import get_user_model

    from fhir_api.models import Resource
    from smart_auth.models import FhirUser

    practitioner = (
        Resource.objects.filter(resource_type="Practitioner", deleted=False)
        .values_list("fhir_id", flat=True)
        .first()
    )
    user = get_user_model().objects.create_user("bench-clinician", password=secrets.token_hex())
    FhirUser.objects.create(user=user, resource_type="Practitioner", fhir_id=practitioner)
    return user


def create_apps(assertion_key):
    """(secret app, private_key_jwt app): confidential, backend services allowed, unthrottled."""
    from oauth2_provider.models import get_application_model

    from smart_auth.serializers import clear_secret, set_new_secret

    smart_app = get_application_model()
    scopes = f"{PATIENT_SCOPE} {USER_SCOPE} {SYSTEM_SCOPE}"
    common = {
        "client_type": "confidential",
        "authorization_grant_type": "authorization-code",
        "redirect_uris": REDIRECT_URI,
        "grant_types": "authorization_code client_credentials",
        "token_rate_limit": UNTHROTTLED,
        "api_rate_limit": UNTHROTTLED,
    }
    secret_app = smart_app(name="Bench secret app", scopes=scopes, **common)
    secret = set_new_secret(secret_app)
    secret_app.save()
    jwt_app = smart_app(
        name="Bench private_key_jwt app",
        scopes=SYSTEM_SCOPE,
        token_endpoint_auth_method=smart_app.AUTH_PRIVATE_KEY_JWT,
        jwks={"keys": [public_jwk(assertion_key)]},
        **common,
    )
    clear_secret(jwt_app)
    jwt_app.save()
    return App(secret_app.client_id, secret), App(jwt_app.client_id)


def new_assertion_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key):
    import jwt

    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": "bench-es384", "alg": "ES384", "use": "sig"}


def sign_assertions(key, client_id, audience, count):
    """`count` client assertions (RFC 7523, SMART Backend Services), each with its own jti,
    valid for the next five minutes."""
    import jwt

    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 290}
    headers = {"kid": "bench-es384", "typ": "JWT"}
    return [
        jwt.encode({**claims, "jti": uuid.uuid4().hex}, key, algorithm="ES384", headers=headers)
        for _ in range(count)
    ]


def authorize(user, app, scope, patient=None):
    """The browser part of a launch, through the real pages: a Template of its Grant."""
    from django.conf import settings
    from django.test import Client
    from oauth2_provider.models import get_grant_model

    browser = Client()
    browser.force_login(user)
    _, challenge = pkce_pair()
    response = browser.get(
        "/smart/authorize",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": "bench",
            "aud": settings.FHIR_BASE_URL,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    consent = _location(response)
    response = browser.post(consent, {"scope": scope.split(), "approve": "1"})
    if _location(response).endswith("/patient"):
        response = browser.post(_location(response), {"patient": patient})
    code = parse_qs(urlsplit(_location(response)).query)["code"][0]
    grant = get_grant_model().objects.get(code=code)
    return Template(grant_id=grant.pk, scope=scope)


def _location(response):
    if response.status_code != 302:
        raise RuntimeError(f"Expected a redirect, got {response.status_code}: {response.content}")
    return response["Location"]


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def clone_codes(template, count, patients=None):
    """`count` fresh codes of the template's authorization: [(code, verifier)]. With
    `patients`, the i-th code's launch context names patients[i % len(patients)]."""
    from django.db import transaction
    from django.utils import timezone
    from oauth2_provider.models import get_grant_model

    from smart_auth.models import LaunchContext
    from smart_auth.validator import code_checksum

    grant_model = get_grant_model()
    grant = grant_model.objects.get(pk=template.grant_id)
    context = LaunchContext.objects.get(grant=grant)
    expires = timezone.now() + timedelta(minutes=10)
    pairs, grants, contexts = [], [], []
    for index in range(count):
        code = secrets.token_urlsafe(30)
        verifier, challenge = pkce_pair()
        pairs.append((code, verifier))
        grants.append(_copy(grant, code=code, code_challenge=challenge, expires=expires))
        extra = {"patient": patients[index % len(patients)]} if patients else {}
        contexts.append(
            _copy(context, family=uuid.uuid4(), code_checksum=code_checksum(code), **extra)
        )
    with transaction.atomic():
        grant_model.objects.bulk_create(grants, batch_size=2000)
        for row, new_grant in zip(contexts, grants, strict=True):
            row.grant = new_grant
        LaunchContext.objects.bulk_create(contexts, batch_size=2000)
    return pairs


def _copy(row, **changes):
    copy = type(row)(
        **{
            field.attname: getattr(row, field.attname)
            for field in row._meta.concrete_fields
            if not field.primary_key
        }
    )
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def exchange_codes(app, pairs):
    """Exchange codes at /smart/token (in-process): the token responses, in order."""
    from django.test import Client

    client = Client()
    responses = []
    for code, verifier in pairs:
        response = client.post(
            "/smart/token",
            exchange_body(code, verifier),
            content_type="application/x-www-form-urlencoded",
            headers={"Authorization": app.basic},
        )
        if response.status_code != 200:
            raise RuntimeError(f"Code exchange failed: {response.status_code} {response.content}")
        responses.append(response.json())
    return responses


def exchange_body(code, verifier):
    from urllib.parse import urlencode

    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
    )


def sample_reads(count):
    """`count` random stored resources of the loaded data (not audit events): (type, id)."""
    from fhir_api.models import Resource

    return list(
        Resource.objects.filter(deleted=False)
        .exclude(resource_type="AuditEvent")
        .order_by("?")
        .values_list("resource_type", "fhir_id")[:count]
    )


def sample_searches(count):
    """`count` random Observations' (patient id, code system, code): searches that match."""
    from fhir_api.models import ReferenceIndex, Resource, TokenIndex

    keys = list(
        Resource.objects.filter(resource_type="Observation", deleted=False)
        .order_by("?")
        .values_list("pk", flat=True)[:count]
    )
    subjects = dict(
        ReferenceIndex.objects.filter(
            resource_id__in=keys, param="subject", target_type="Patient"
        ).values_list("resource_id", "target_id")
    )
    codes = {}
    for key, system, code in (
        TokenIndex.objects.filter(resource_id__in=keys, param="code")
        .exclude(system="")
        .values_list("resource_id", "system", "code")
    ):
        codes.setdefault(key, (system, code))
    return [(subjects[key], *codes[key]) for key in keys if key in subjects and key in codes]


def analyze():
    """Fresh planner statistics, as autovacuum would gather soon after a bulk load."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
