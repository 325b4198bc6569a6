"""The benchmark suite (`make bench`, `make bench-peers`): the product as production runs it,
driven over HTTP by wrk, beside a bare Django view and, with --peers, node-oidc-provider.

    .venv/bin/python bench/run.py [--scale 10k|1m] [--peers] [--duration 10] [--rounds 3]

A run: generate (once) and load the data set into a scratch PostgreSQL database with
`manage.py import_fhir`; start the product under gunicorn with production settings (DEBUG off,
a generated SECRET_KEY and signing key, Redis cache), the bare Django project under the same
gunicorn settings, and the peer; then run every workload for --duration seconds with wrk
(16 connections), --rounds times, interleaved; then a worker's memory over many reads, the
write workloads and bulk imports. It prints one table of medians and writes it to
bench/results/. Nothing here is a test: no figure is asserted.

--profile NAME[,NAME] runs those workloads under py-spy instead (pip install py-spy into the
venv) and prints where the workers spend their time.
"""

import os
import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path; put the project root there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [
    entry for entry in sys.path if Path(entry or os.curdir).resolve() != _HERE
]

import argparse  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from datetime import datetime  # noqa: E402

import orjson  # noqa: E402

from bench import dataset, fixtures, harness, servers, workloads  # noqa: E402
from bench.loadgen import drive, probe, require_wrk  # noqa: E402
from bench.report import Results, machine, table, versions, write  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="10k", help="stored resources: 10k, 1m, 250k...")
    parser.add_argument("--peers", action="store_true", help="also node-oidc-provider")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="seconds per workload, unrecorded")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--memory-requests", type=int, default=100_000, help="per worker; 0: skip")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--profile", default="", help="comma-separated workloads to profile")
    parser.add_argument(
        "--jobs", type=int, default=2, help="import_fhir --jobs (files loaded at a time)"
    )
    parser.add_argument("--port", type=int, default=8101, help="product; bare +1, peer +2")
    parser.add_argument(
        "--synchronous-commit",
        default="on",
        choices=["on", "off"],
        help="PostgreSQL's; off shows what waiting for the disk at each commit costs",
    )
    parser.add_argument(
        "--drain-process",
        action="store_true",
        help="drain the audit queue in `drain_audit_events --every 1`, not in the workers",
    )
    parser.add_argument("--redis-db", type=int, default=13, help="emptied at start")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL role that may create roles and databases",
    )
    return parser.parse_args()


def main():
    args = parse_args()
    require_wrk()
    started = time.perf_counter()
    folder = harness.SCRATCH / "runs" / f"{datetime.now():%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True)
    try:
        text = measure(args, folder)
    finally:
        forget_secrets(folder)
    if text is None:
        return
    text += f"\n\nWhole run: {(time.perf_counter() - started) / 60:.1f} min."
    print("\n" + text)
    print(f"\nWritten to {write(harness.RESULTS, f'{args.scale}-{args.worker_class}', text)}")


def measure(args, folder):
    """The whole run on a scratch database: the table's text (None when profiling)."""
    load_before = os.getloadavg()[1]
    data = dataset.cohort(dataset.parse_scale(args.scale))
    bundles = [
        orjson.dumps(orjson.loads(path.read_bytes())).decode()
        for path in sorted(dataset.chunk(dataset.WRITE_SEED, 10).glob("*.json"))
    ]
    database_settings = {"synchronous_commit": args.synchronous_commit}
    with harness.scratch_database(args.admin_url, settings=database_settings) as database_url:
        env = harness.product_env(
            port=args.port,
            database_url=database_url,
            cache_url=harness.redis_cache_url(args.redis_db),
            key_file=harness.write_signing_key(folder),
        )
        harness.manage(env, "migrate", "--noinput", "--verbosity", "0")
        harness.manage(env, "createcachetable")
        # As `make run` does; the consent pages the driver goes through need the manifest.
        harness.manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        print(f"Loading {len(data) * dataset.CHUNK} patients with import_fhir...", flush=True)
        stored, load_seconds = dataset.load(env, data, jobs=args.jobs)
        print(f"Loaded {stored:,} resources in {load_seconds:.0f} s", flush=True)
        harness.setup_django(env)
        fixtures.analyze()
        ctx = make_context(args, env, folder, bundles)
        results = Results()
        with ExitStack() as stack:
            running = start_servers(args, env, folder, ctx, stack)
            if args.profile:
                from bench import hotspots

                for name in args.profile.split(","):
                    hotspots.profile(workloads.BY_NAME[name], ctx, running, args, folder)
                return None
            run_rounds(workloads.WORKLOADS, args, ctx, running, results)
            if args.memory_requests and selected("fhir_read", args):
                memory(args, ctx, running["product"], results)
            run_rounds(workloads.WRITES, args, ctx, running, results)
            if selected("import", args):
                bulk_import(args, env, results)
        header = describe(args, stored, load_seconds, (load_before, os.getloadavg()[1]))
        return header + "\n\n" + table(results, workloads.WORKLOADS + workloads.WRITES)


def forget_secrets(folder):
    """The request files hold tokens, secrets and codes, and the key signs tokens: a run
    leaves only its logs and profiles behind."""
    for path in [*folder.glob("*.txt"), folder / "signing-key.pem"]:
        if not path.name.startswith("profile-"):
            path.unlink(missing_ok=True)


def selected(name, args):
    return not args.only or name in args.only.split(",")


def make_context(args, env, folder, bundles):
    clinician = fixtures.create_clinician()
    key = fixtures.new_assertion_key()
    secret_app, jwt_app = fixtures.create_apps(key)
    searches = fixtures.sample_searches(2000)
    return workloads.Context(
        folder=folder,
        connections=args.connections,
        threads=args.threads,
        secret_app=secret_app,
        jwt_app=jwt_app,
        assertion_key=key,
        token_url=env["PUBLIC_BASE_URL"] + "/smart/token",
        patient_template=fixtures.authorize(
            clinician, secret_app, fixtures.PATIENT_SCOPE, patient=searches[0][0]
        ),
        user_template=fixtures.authorize(clinician, secret_app, fixtures.USER_SCOPE),
        reads=fixtures.sample_reads(5000),
        searches=searches,
        bundles=bundles,
        peer=fixtures.App("bench-peer", secrets.token_urlsafe(32)) if args.peers else None,
    )


def start_servers(args, env, folder, ctx, stack):
    settings = {
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.worker_threads,
    }
    if args.drain_process:
        env = {**env, "AUDIT_DRAIN_SECONDS": "off"}
        drainer = servers.drain_process(env, log=folder / "drain.log")
        stack.callback(servers.stop_process, drainer)
    running = {
        "product": servers.gunicorn(
            "product",
            "config.wsgi",
            port=args.port,
            env=env,
            log=folder / "product.log",
            **settings,
        )
    }
    stack.callback(running["product"].stop)
    running["bare"] = servers.gunicorn(
        "bare Django",
        "bench.bare.app:application",
        port=args.port + 1,
        env={"DJANGO_SETTINGS_MODULE": "bench.bare.settings"},
        log=folder / "bare.log",
        **settings,
    )
    stack.callback(running["bare"].stop)
    if args.peers:
        script = servers.install_oidc_provider(harness.SCRATCH / "peers")
        running["peer"] = servers.oidc_provider(
            script,
            port=args.port + 2,
            client_id=ctx.peer.client_id,
            secret=ctx.peer.secret,
            log=folder / "peer.log",
        )
        stack.callback(running["peer"].stop)
    return running


def run_rounds(chosen, args, ctx, running, results):
    chosen = [w for w in chosen if selected(w.name, args) and w.server in running]
    if args.warmup:
        print("Warm-up...", flush=True)
        for workload in chosen:
            run_once(workload, args, ctx, running, results, args.warmup, record=False)
    for number in range(1, args.rounds + 1):
        print(f"Round {number} of {args.rounds}", flush=True)
        for workload in chosen:
            run_once(workload, args, ctx, running, results, args.duration)


def run_once(workload, args, ctx, running, results, seconds, record=True):
    """One wrk run of `workload`; a workload that fails to prepare or whose probe is refused
    becomes an error row, and the run goes on."""
    server = running[workload.server]
    reference = results.last_rps(workload.name) or results.last_rps("token_secret") or 500
    count = int(min(100_000, max(1000, 2 * reference * seconds)))
    try:
        prepared = workload.prepare(ctx, count)
        error = probe(server.url, prepared.probe) if prepared.probe else None
    except Exception as failure:
        traceback.print_exc()
        error = f"{type(failure).__name__}: {failure}"
    if error:
        print(f"  {workload.name}: {error}", flush=True)
        results.fail(workload.name, error)
        return
    result = drive(server.url, prepared, seconds, args)
    result.resources_per_request = prepared.resources_per_request
    print(
        f"  {workload.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, {result.errors} errors",
        flush=True,
    )
    if record:
        results.add(workload.name, result)


def memory(args, ctx, product, results, chunk_seconds=15):
    """Reads until each worker has served about --memory-requests, sampling RSS between runs."""
    pids = product.worker_pids()
    target = args.memory_requests * len(pids)
    print(f"Memory: {target:,} reads over {len(pids)} workers...", flush=True)
    samples, total = [], 0
    while total < target:
        prepared = workloads.fhir_read(ctx, 0)
        result = drive(product.url, prepared, chunk_seconds, args)
        total += result.requests
        samples.append((total, max(servers.rss_mb(pid) for pid in pids)))
        print(f"  {total:,} reads, {result.rps:,.0f} req/s: {samples[-1][1]:.1f} MB", flush=True)
    first_total, first = samples[0]
    middle = samples[len(samples) // 2][1]
    last = samples[-1][1]
    results.add_row(
        "Worker memory after reads (largest worker's RSS)",
        f"{last:.0f} MB",
        f"after {total // len(pids):,} requests per worker; {first:.0f} MB after the first "
        f"{first_total:,}; {last - middle:+.1f} MB over the second half",
    )


def bulk_import(args, env, results):
    rates = []
    for number in range(args.rounds):
        folder = dataset.chunk(dataset.IMPORT_SEED + number, dataset.IMPORT_PATIENTS)
        rates.append(dataset.import_rate(env, folder, args.jobs))
        print(f"  import: {rates[-1]:,.0f} resources/s", flush=True)
    results.add_row(
        "Bulk import (import_fhir, transaction Bundles)",
        f"{statistics.median(rates):,.0f} resources/s",
        f"{len(rates)} runs of {dataset.IMPORT_PATIENTS} patients: "
        + " / ".join(f"{rate:,.0f}" for rate in rates),
    )


def describe(args, stored, load_seconds, load_averages):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        database = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        cursor.execute("SELECT count(*) FROM fhir_api_resource")
        final = cursor.fetchone()[0]
    cache = "Redis cache" if "CACHE_URL" in os.environ else "database cache (no Redis)"
    gunicorn = f"gunicorn {args.workers} {args.worker_class} workers"
    if args.worker_class == "gthread":
        gunicorn += f" x {args.worker_threads} threads"
    if args.drain_process:
        gunicorn += ", the audit queue drained by `drain_audit_events --every 1`"
    return "\n".join(
        [
            f"Scale {args.scale}: {stored:,} resources loaded by import_fhir --jobs {args.jobs} "
            f"in {load_seconds:,.0f} s ({stored / load_seconds:,.0f} resources/s); "
            f"{final:,} stored at the end (audit events and writes included).",
            f"{gunicorn}; {cache}; PostgreSQL synchronous_commit {args.synchronous_commit}; "
            f"wrk {args.threads} threads, {args.connections} connections, "
            f"{args.duration} s per run, {args.rounds} rounds interleaved; medians.",
            f"Machine: {machine()}; 5-minute load average {load_averages[0]:.1f} at the "
            f"start, {load_averages[1]:.1f} at the end. {versions(database, node=args.peers)}.",
        ]
    )


if __name__ == "__main__":
    main()
