"""Where the workers spend their time under load: py-spy sampling the gunicorn workers while
wrk drives one workload (`bench/run.py --profile token_secret,fhir_read`).

py-spy is not a project dependency: `.venv/bin/pip install py-spy`. It writes the collapsed
stacks to the run's scratch folder (for flame graph tools) and this module prints the top
functions by own time and by time including callees, and own time per package.
"""

import re
import subprocess
from collections import Counter
from pathlib import Path

from bench.harness import ROOT
from bench.loadgen import drive, probe

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
TOP = 25
# A worker's frame while it handles a request (sync and gthread workers).
HANDLING = re.compile(r"\w*Worker\.handle\w* \(gunicorn/")


def profile(workload, ctx, running, args, folder):
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: .venv/bin/pip install py-spy")
    server = running[workload.server]
    seconds = args.duration
    prepared = workload.prepare(ctx, int(max(1000, 2000 * seconds)))
    error = probe(server.url, prepared.probe) if prepared.probe else None
    if error:
        print(f"{workload.name}: {error}")
        return
    stacks = folder / f"profile-{workload.name}.txt"
    spy = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nolineno",
            "--output",
            str(stacks),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = drive(server.url, prepared, seconds, args)
    spy.wait()
    print(
        f"\n## {workload.label}: {result.rps:,.0f} req/s under py-spy, p50 {result.p50_ms:.1f} ms"
        f"\n\n{summarize(stacks)}\n\nCollapsed stacks: {stacks}"
    )


def summarize(path, top=TOP):
    """Markdown tables of where a py-spy raw (collapsed stacks) file says time went."""
    own, inclusive, packages, ours = Counter(), Counter(), Counter(), Counter()
    waits = Counter()  # (our function, what it waits on)
    total = 0
    for stack, count in _handling_stacks(path):
        total += count
        own[stack[-1]] += count
        packages[_package(stack[-1])] += count
        for frame in set(stack):
            if "(gunicorn" not in frame:
                inclusive[frame] += count
        caller = _innermost_ours(stack)
        ours[caller] += count
        waits[caller, _waits_on(stack[-1])] += count
    if not total:
        return "(no samples)"

    def percent(count):
        return f"{count * 100 / total:.1f}%"

    def rows(counter):
        return "\n".join(f"| {percent(n)} | `{frame}` |" for frame, n in counter.most_common(top))

    by_caller = "\n".join(
        f"| {percent(n)} | {percent(waits[caller, 'database'])} | "
        f"{percent(waits[caller, 'cache'])} | {percent(waits[caller, 'crypto'])} | `{caller}` |"
        for caller, n in ours.most_common(top)
    )
    return "\n".join(
        [
            f"{total:,} samples of workers handling a request (percentages of that time).",
            "",
            "Time by the innermost function of this project (or, outside it, of the library",
            "that called into Django, the database driver, Redis or crypto), and how much of",
            "it was spent waiting on PostgreSQL, on Redis, and in JWT/crypto code:",
            "",
            "| all | database | cache | crypto | function |",
            "| ---: | ---: | ---: | ---: | --- |",
            by_caller,
            "",
            "| own time | function |",
            "| ---: | --- |",
            rows(own),
            "",
            "| with callees | function |",
            "| ---: | --- |",
            rows(inclusive),
            "",
            "| own time | package |",
            "| ---: | --- |",
            rows(packages),
        ]
    )


def _handling_stacks(path):
    """(frames, samples) of the stacks of a worker handling a request."""
    for row in Path(path).read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        frames = [f for f in stack.split(";") if "(" in f]  # drop process and thread labels
        if any(HANDLING.match(frame) for frame in frames):
            yield frames, int(count)


OURS = ("(smart_auth/", "(fhir_api/", "(consent/", "(config/")
LIBRARIES = ("(oauth2_provider/", "(oauthlib/", "(rest_framework/", "(axes/", "(corsheaders/")
LOW_LEVEL = {
    "database": ("(psycopg/",),
    "cache": ("(redis/", "(django_redis/"),
    "crypto": ("(jwt/", "(jwcrypto/", "(cryptography/"),
}


def _innermost_ours(frames):
    for kinds in (OURS, LIBRARIES):
        for frame in reversed(frames):
            if any(kind in frame for kind in kinds):
                return frame
    return "(Django and gunicorn only)"


def _waits_on(leaf):
    return next((name for name, kinds in LOW_LEVEL.items() if any(k in leaf for k in kinds)), "")


def _package(frame):
    """`helper (django/db/models/query.py)` -> `django.db`; project code keeps two levels."""
    location = frame[frame.rfind("(") + 1 : -1]
    parts = [p for p in location.replace("\\", "/").split("/") if p and not p.endswith(".py")]
    return ".".join(parts[:2]) or location
