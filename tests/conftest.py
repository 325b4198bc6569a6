"""Fixtures shared by every test, named for the thing they give."""

import json
from pathlib import Path

import pytest
from django.test import Client

# The SMART fixtures (apps, users, patients, a fresh key ring per test), for every folder.
from tests.smart_support import (  # noqa: F401
    admin_user,
    clinician,
    confidential_app,
    fresh_key_ring,
    other_patient,
    patient_record,
    patient_user,
    public_app,
)

FHIR_JSON = "application/fhir+json"
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "fhir-examples" / "R4"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users' passwords hashed with MD5 in tests: PBKDF2 costs up to a second per user created
    or signed in on a loaded machine. Production keeps PBKDF2 (test_hashers checks it), and the
    client secret hasher stays so secrets still verify."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "smart_auth.hashers.ClientSecretHasher",
    ]


@pytest.fixture(autouse=True)
def audit_drains_on_read_only(settings):
    """Queued AuditEvents move into the store only when the FHIR API reads them (or a test
    drains): a drain after a request would add its statements to a test's count at random.
    tests/fhir_api/test_audit_queue.py turns the timed drain on."""
    settings.FHIR = {**settings.FHIR, "AUDIT_DRAIN_SECONDS": None}


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", password="pw", is_staff=True)


@pytest.fixture
def without_audit(monkeypatch):
    """Requests store no AuditEvents: for tests that count the queries or rows of something
    else. Auditing itself is tested in tests/fhir_api/test_audit.py."""
    monkeypatch.setattr("fhir_api.audit_log.do_record_audit_events", lambda events: None)


@pytest.fixture
def fhir(staff_user):
    """A test client logged in as staff, speaking FHIR JSON."""
    client = FhirClient()
    client.force_login(staff_user)
    return client


class FhirClient(Client):
    """Django's test client with FHIR JSON bodies and `.json()` on every response."""

    def post_resource(self, path, resource, **headers):
        return self.post(path, json.dumps(resource), content_type=FHIR_JSON, headers=headers)

    def put_resource(self, path, resource, **headers):
        return self.put(path, json.dumps(resource), content_type=FHIR_JSON, headers=headers)


def load_example(name):
    return json.loads((EXAMPLES_DIR / name).read_text())
