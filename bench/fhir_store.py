"""Store benchmark: transaction import, read by id and Observation searches, unscoped and
patient-scoped.

    python bench/fhir_store.py --patients 200 [--database-url postgres://user:pw@host/db]

Runs against a fresh, separate database (a temporary SQLite file, or a scratch PostgreSQL
database created next to the one named and dropped at the end), with config.settings
otherwise. Imports a carebundle cohort through `process_bundle` (the code behind POST /fhir),
then times reads and searches through Django's test Client as a logged-in staff user, so
the figures include URL routing, DRF, authentication and rendering, but no network. The
patient-scoped search runs the category search as each patient's own `patient/*.rs` SMART
access token (JWT check, token row lookup and the compartment filter in the SQL).
Prints a markdown table; nothing is asserted.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

# Run as a script, this folder comes first on sys.path, and bench/token.py would shadow the
# standard library's `token` (imported by inspect, which Django imports). Put the project root
# there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [
    entry for entry in sys.path if Path(entry or os.curdir).resolve() != _HERE
]

from bench.harness import run_in_scratch_database  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--database-url", default="sqlite://", help="sqlite:// or postgres://...")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    run_in_scratch_database(args.database_url, "fhir_bench", run, args)


def run(args):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    rows = []

    started = time.perf_counter()
    bundles = generate(args.patients, args.seed)
    resources = sum(len(b["entry"]) for b in bundles)
    print(
        f"Generated {args.patients} patients, {resources} resources "
        f"in {time.perf_counter() - started:.1f} s; importing into {engine}...",
        flush=True,
    )
    seconds = import_bundles(bundles)
    print(f"Imported in {seconds:.1f} s ({resources / seconds:,.0f} resources/s)", flush=True)
    rows.append(
        (
            "Import (transaction Bundles)",
            f"{resources / seconds:,.0f} resources/s",
            f"{resources} resources in {seconds:.1f} s",
        )
    )

    if connection.vendor == "postgresql":
        # Fresh planner statistics, as autovacuum would gather soon after a bulk load; without
        # them PostgreSQL plans the first searches as if the tables were empty.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    user = get_user_model().objects.create_user("bench", is_staff=True)
    client = Client()
    client.force_login(user)
    rng = random.Random(args.seed)

    paths = read_paths(rng, args.reads)
    latencies = timed_gets(client, paths)
    rows.append(
        (
            "Read by id",
            f"{len(latencies) / sum(latencies):,.0f} req/s",
            f"p50 {p(latencies, 50)} p99 {p(latencies, 99)}",
        )
    )

    code_queries, category_queries, patients = search_paths(rng, args.searches)
    tokens = patient_tokens(patients)
    scoped_queries = ["/fhir/Observation?category=laboratory"] * len(patients)
    for label, queries, headers in (
        # \\| is a | inside a markdown table
        ("Search `Observation?patient=X&code=system\\|code`", code_queries, None),
        ("Search `Observation?patient=X&category=laboratory`", category_queries, None),
        (
            "Search `Observation?category=laboratory` with X's `patient/*.rs` token",
            scoped_queries,
            tokens,
        ),
    ):
        latencies = timed_gets(client, queries, headers)
        rows.append(
            (
                label,
                f"p50 {p(latencies, 50)}",
                f"p99 {p(latencies, 99)} ({len(latencies) / sum(latencies):,.0f} req/s)",
            )
        )

    print(
        f"\n{args.patients} patients, {resources} resources, {engine}, "
        f"Python {sys.version.split()[0]}\n"
    )
    print("| Measure | Result | Detail |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def generate(count, seed):
    import carebundle
    import orjson

    return [
        orjson.loads(carebundle.to_json(b))
        for b in carebundle.generate_cohort(count=count, seed=seed)
    ]


def import_bundles(bundles):
    from django.conf import settings

    from fhir_api.bundles import process_bundle
    from fhir_api.policy import FULL_ACCESS

    base_url = settings.FHIR["BASE_URL"]
    started = time.perf_counter()
    for bundle in bundles:
        process_bundle(bundle, base_url=base_url, policy=FULL_ACCESS)
    return time.perf_counter() - started


def read_paths(rng, count):
    from fhir_api.models import Resource

    keys = list(Resource.objects.values_list("resource_type", "fhir_id"))
    return [f"/fhir/{t}/{i}" for t, i in (rng.choice(keys) for _ in range(count))]


def search_paths(rng, count):
    """Per sampled patient, one of their Observation codes, taken from the stored data."""
    import orjson

    from fhir_api.models import ReferenceIndex, Resource

    patients = list(
        Resource.objects.filter(resource_type="Patient").values_list("fhir_id", flat=True)
    )
    code_queries, category_queries, sampled = [], [], []
    for patient in (rng.choice(patients) for _ in range(count)):
        sampled.append(patient)
        observation = (
            Resource.objects.filter(
                resource_type="Observation",
                pk__in=ReferenceIndex.objects.filter(
                    resource_type="Observation", param="subject", target_id=patient
                ).values("resource_id"),
            )
            .values_list("content", flat=True)
            .first()
        )
        coding = orjson.loads(observation)["code"]["coding"][0]
        token = quote(f"{coding['system']}|{coding['code']}", safe="")
        code_queries.append(f"/fhir/Observation?patient={patient}&code={token}")
        category_queries.append(f"/fhir/Observation?patient={patient}&category=laboratory")
    return code_queries, category_queries, sampled


def patient_tokens(patients):
    """Per patient, the headers of a `patient/*.rs` access token as /smart/token issues it."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model

    from smart_auth.serializers import clear_secret
    from smart_auth.tokens import default_token_signer

    scopes = ["launch/patient", "patient/*.rs"]
    app = get_application_model()(
        name="Bench app",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="https://bench.example.org/callback",
        scopes=" ".join(scopes),
    )
    clear_secret(app)
    app.save()
    tokens = {}
    for patient in dict.fromkeys(patients):
        claims = default_token_signer.access_token_claims(
            user=None,
            client_id=app.client_id,
            scopes=scopes,
            expires_in=3600,
            context={"patient": patient},
        )
        token = default_token_signer.sign(claims)
        get_access_token_model().objects.create(
            token=token,
            application=app,
            expires=timezone.now() + timedelta(hours=1),
            scope=" ".join(scopes),
        )
        tokens[patient] = {"Authorization": f"Bearer {token}"}
    return [tokens[patient] for patient in patients]


def timed_gets(client, paths, headers=None):
    """Latencies of GETs through `client`; `headers[i]`, if given, goes with `paths[i]`."""
    latencies = []
    for index, path in enumerate(paths):
        extra = headers[index] if headers else {}
        started = time.perf_counter()
        response = client.get(path, headers=extra)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} -> {response.status_code}: {response.content[:300]!r}")
    return latencies


def p(latencies, percentile):
    """The percentile in milliseconds."""
    cut = statistics.quantiles(latencies, n=100, method="inclusive")[percentile - 1]
    return f"{cut * 1000:.1f} ms"


if __name__ == "__main__":
    main()
