"""Run once in the cluster's environment (a subprocess with its DATABASE_URL): migrate, collect
the static files production serves from a manifest, and create the accounts the tests use: an
administrator and a patient linked to a Patient record. One Python process does it all, which
is several times faster than manage.py migrate, seed_demo and collectstatic one after another.
"""

import os
import sys


def prepare():
    from django.core.management import call_command

    from fhir_api import store
    from smart_auth.management.commands.seed_demo import ensure_account

    password = os.environ["DEMO_PASSWORD"]
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    patient = {"resourceType": "Patient", "name": [{"family": "Nightingale", "given": ["Flo"]}]}
    store.do_create("Patient", patient, fhir_id="mh-patient")
    ensure_account("admin", {"is_staff": True, "is_superuser": True}, password)
    ensure_account("patient", {}, password, "Patient/mh-patient")


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    prepare()
