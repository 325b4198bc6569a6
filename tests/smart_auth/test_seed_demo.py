"""manage.py seed_demo: demo patients and accounts, idempotent, and safe outside DEBUG."""

import io

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from fhir_api import store
from fhir_api.models import Resource
from smart_auth.models import FhirUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def development(settings):
    """As in development (pytest-django turns DEBUG off); the refusal tests turn it off again."""
    settings.DEBUG = True


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", "--patients", "2", *args, stdout=out)
    return out.getvalue()


def counts():
    return (
        Resource.objects.count(),
        Resource.objects.filter(resource_type="Patient").count(),
        get_user_model().objects.count(),
        FhirUser.objects.count(),
    )


def test_seed_loads_patients_and_links_the_accounts():
    output = seed()
    resources, patients, users, links = counts()
    assert patients == 2
    assert resources > 40
    assert (users, links) == (3, 2)

    User = get_user_model()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(settings.DEMO_PASSWORD)
    clinician = User.objects.get(username="clinician")
    assert not clinician.is_staff
    assert clinician.fhir_user.resource_type == "Practitioner"
    patient = User.objects.get(username="patient")
    assert not patient.is_staff
    assert patient.fhir_user.resource_type == "Patient"
    for user in (clinician, patient):
        store.read(user.fhir_user.resource_type, user.fhir_user.fhir_id)  # exists
        assert user.fhir_user.reference in output

    assert f"{settings.PUBLIC_BASE_URL}/fhir/metadata" in output
    assert f"{settings.PUBLIC_BASE_URL}/admin/" in output


def test_seed_twice_changes_nothing():
    seed()
    first = counts()
    links = list(FhirUser.objects.values_list("user__username", "resource_type", "fhir_id"))
    output = seed()
    assert counts() == first
    assert list(FhirUser.objects.values_list("user__username", "resource_type", "fhir_id")) == links
    assert "0 loaded now, 2 already there" in output


def test_a_larger_cohort_adds_only_the_new_patients():
    seed()
    call_command("seed_demo", "--patients", "3", stdout=io.StringIO())
    assert Resource.objects.filter(resource_type="Patient").count() == 3


def test_practitioners_get_distinct_names():
    seed()
    names = {
        (r["name"][0]["given"][0], r["name"][0]["family"])
        for r in map(_parsed, Resource.objects.filter(resource_type="Practitioner"))
    }
    assert len(names) == 2


@override_settings(DEBUG=False)
def test_refuses_the_default_password_when_debug_is_off(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        seed()
    assert counts() == (0, 0, 0, 0)


@override_settings(DEBUG=False, DEMO_PASSWORD="an-explicit-one")
def test_accepts_an_explicit_password_when_debug_is_off(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "an-explicit-one")
    output = seed()
    assert get_user_model().objects.get(username="admin").check_password("an-explicit-one")
    assert "an-explicit-one" not in output


def _parsed(row):
    import json

    return json.loads(row.content)
