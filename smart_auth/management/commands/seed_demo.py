"""manage.py seed_demo: synthetic patients plus the admin, clinician and patient demo accounts.

Safe to run again. The data is carebundle's deterministic cohort (the same seed gives the same
people, and a larger cohort starts with the same people), each patient's transaction Bundle
loaded through `process_bundle`, the code behind `POST /fhir`. A patient whose carebundle
identifier (its synthetic MRN) is already stored is skipped with its whole Bundle, which is
all-or-nothing, so a rerun adds nothing and `--patients 40` after 30 adds the 10 new ones.
Existing accounts keep their password; only their flags and FHIR links are put right.

carebundle names people from a deliberately fictional pool ("Juno Syntheson") and labels every
resource HTEST, so demo records cannot be mistaken for real ones; we keep both. It names every
patient's practitioner "Fen Mocklin", so each Practitioner gets its own name from the same pool.
"""

import os

import carebundle
import orjson
from carebundle.core.safety import FICTIONAL_FAMILY_NAMES, FICTIONAL_GIVEN_NAMES
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fhir_api.bundles import process_bundle
from fhir_api.policy import FULL_ACCESS
from fhir_api.search.query import find_matches
from smart_auth.models import FhirUser

DEMO_SEED = 2026
# username -> (user flags, type of the FHIR resource the login is)
ACCOUNTS = {
    "admin": ({"is_staff": True, "is_superuser": True}, None),
    "clinician": ({"is_staff": False, "is_superuser": False}, "Practitioner"),
    "patient": ({"is_staff": False, "is_superuser": False}, "Patient"),
}


class Command(BaseCommand):
    help = "Load demo patients (carebundle) and the admin, clinician and patient accounts."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=30, help="cohort size (default 30)")
        parser.add_argument("--seed", type=int, default=DEMO_SEED, help="carebundle seed")

    def handle(self, *args, patients, seed, **options):
        password = demo_password()
        bundles = demo_bundles(patients, seed)
        loaded = sum(load_bundle(bundle) for bundle in bundles)
        people = {
            "Patient": _person(bundles[0], "Patient"),
            "Practitioner": _person(bundles[0], "Practitioner"),
        }
        for username, (flags, link) in ACCOUNTS.items():
            ensure_account(username, flags, password, people[link][0] if link else None)
        self._print_summary(patients, loaded, people)

    def _print_summary(self, patients, loaded, people):
        base = settings.PUBLIC_BASE_URL
        write = self.stdout.write
        write(f"Demo patients: {patients} ({loaded} loaded now, {patients - loaded} already there)")
        secret = settings.DEMO_PASSWORD if settings.DEBUG else "the DEMO_PASSWORD setting"
        write(f"Demo accounts (password for new accounts: {secret}):")
        write("  admin      superuser and staff")
        for username in ("clinician", "patient"):
            reference, name = people[ACCOUNTS[username][1]]
            write(f"  {username:<10} {reference} ({name})")
        write(f"FHIR API: {base}/fhir/metadata")
        write(f"Admin:    {base}/admin/")


def demo_password():
    """The password for new demo accounts; refuses the built-in default outside DEBUG."""
    if not settings.DEBUG and "DEMO_PASSWORD" not in os.environ:
        raise CommandError(
            "Refusing to create demo accounts with the default password while DEBUG is off. "
            "Set DEMO_PASSWORD in the environment (or .env) to the password they should have."
        )
    return settings.DEMO_PASSWORD


def demo_bundles(count, seed):
    """`count` transaction Bundles as dicts, one per patient, the same on every run."""
    bundles = [
        orjson.loads(carebundle.to_json(b))
        for b in carebundle.generate_cohort(count=count, seed=seed)
    ]
    for number, bundle in enumerate(bundles):
        _name_practitioner(bundle, number)
    return bundles


def _name_practitioner(bundle, number):
    """A distinct fictional name per Practitioner (distinct for the first 100 patients)."""
    given = FICTIONAL_GIVEN_NAMES[number % len(FICTIONAL_GIVEN_NAMES)]
    family = FICTIONAL_FAMILY_NAMES[(number + number // 10) % len(FICTIONAL_FAMILY_NAMES)]
    practitioner = _resource(bundle, "Practitioner")
    old = _display_name(practitioner)
    practitioner["name"] = [{"use": "official", "family": family, "given": [given]}]
    if "text" in practitioner:
        practitioner["text"]["div"] = practitioner["text"]["div"].replace(old, f"{given} {family}")


def load_bundle(bundle):
    """Store one patient's Bundle unless that patient is already there; True if stored."""
    with transaction.atomic():
        if _find(*_identifier(bundle, "Patient")) is not None:
            return False
        process_bundle(bundle, base_url=settings.FHIR["BASE_URL"], policy=FULL_ACCESS)
        return True


def ensure_account(username, flags, password, fhir_reference=None):
    """Create the user with `password` if missing, else fix its flags; link it to a resource."""
    user, created = get_user_model().objects.get_or_create(username=username, defaults=flags)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    elif any(getattr(user, key) != value for key, value in flags.items()):
        for key, value in flags.items():
            setattr(user, key, value)
        user.save(update_fields=list(flags))
    if fhir_reference:
        resource_type, fhir_id = fhir_reference.split("/")
        FhirUser.objects.update_or_create(
            user=user, defaults={"resource_type": resource_type, "fhir_id": fhir_id}
        )
    return user


def _person(bundle, resource_type):
    """('Type/id', 'Given Family') of the Patient or Practitioner of a stored Bundle."""
    fhir_id = _find(*_identifier(bundle, resource_type))
    return f"{resource_type}/{fhir_id}", _display_name(_resource(bundle, resource_type))


def _identifier(bundle, resource_type):
    identifier = _resource(bundle, resource_type)["identifier"][0]
    return resource_type, f"{identifier['system']}|{identifier['value']}"


def _resource(bundle, resource_type):
    """The first resource of the type in a carebundle Bundle (there is one of each person)."""
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    )


def _display_name(resource):
    name = resource["name"][0]
    return " ".join([*name.get("given", []), name.get("family", "")])


def _find(resource_type, identifier):
    return (
        find_matches(resource_type, [("identifier", identifier)])
        .values_list("fhir_id", flat=True)
        .first()
    )
