"""The one table a run prints: medians of the repeated runs, and ratios to the peers."""

import os
import platform
import statistics
import subprocess
from datetime import datetime
from pathlib import Path

BASELINES = {"peer_cc": "node-oidc-provider", "bare": "bare Django"}


class Results:
    """Every run of every workload, in the order they ran."""

    def __init__(self):
        self.runs = {}  # name -> [Result]
        self.errors = {}  # name -> message
        self.rows = []  # (label, rate, p50, p99, ratio, notes) for rows that are not wrk runs

    def add(self, name, result):
        self.runs.setdefault(name, []).append(result)

    def fail(self, name, message):
        self.errors[name] = message

    def median_rps(self, name):
        runs = self.runs.get(name)
        return statistics.median(run.rps for run in runs) if runs else None

    def last_rps(self, name):
        runs = self.runs.get(name)
        return runs[-1].rps if runs else None

    def add_row(self, label, rate, notes="", p50="", p99="", ratio=""):
        self.rows.append((label, rate, p50, p99, ratio, notes))


def table(results, workloads):
    lines = [
        "| workload | requests/s | p50 | p99 | ratio | notes |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for workload in workloads:
        if workload.name in results.runs or workload.name in results.errors:
            lines.append(_row(results, workload))
    lines += ["| " + " | ".join(row) + " |" for row in results.rows]
    return "\n".join(lines)


def _row(results, workload):
    runs = results.runs.get(workload.name, [])
    error = results.errors.get(workload.name)
    if not runs:
        return f"| {workload.label} | error | | | | {_cell(error)} |"
    rps = statistics.median(run.rps for run in runs)
    p50 = statistics.median(run.p50_ms for run in runs)
    p99 = statistics.median(run.p99_ms for run in runs)
    notes = [f"{len(runs)} runs: " + " / ".join(f"{run.rps:,.0f}" for run in runs)]
    failed = sum(run.errors for run in runs)
    if failed:
        notes.append(f"**{failed:,} failed responses of {sum(r.requests for r in runs):,}**")
    if any(run.starved or (workload.single_use and run.wrapped) for run in runs):
        notes.append("**ran out of single-use items**")
    if error:
        notes.append(_cell(error))
    per_request = runs[0].resources_per_request
    rate = f"{rps:,.0f}"
    if per_request:
        notes.append(f"{rps * per_request:,.0f} resources/s ({per_request} per Bundle)")
    baseline = results.median_rps(workload.baseline) if workload.baseline else None
    ratio = f"{rps / baseline:.2f}x {BASELINES[workload.baseline]}" if baseline else ""
    cells = [workload.label, rate, f"{p50:.1f} ms", f"{p99:.1f} ms", ratio, "; ".join(notes)]
    return "| " + " | ".join(cells) + " |"


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")[:300]


def machine():
    """One line on the machine and software the figures came from."""
    cpu = next(
        (
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        ),
        platform.processor(),
    )
    cores = os.cpu_count()
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    return f"{cores} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}"


def versions(database_version, node=False):
    import django

    parts = [f"Python {platform.python_version()}", f"Django {django.get_version()}"]
    parts.append(database_version)
    parts.append(_first_line(["wrk", "--version"]))
    if node:
        parts.append("Node.js " + _first_line(["node", "--version"]))
    return ", ".join(part for part in parts if part)


def _first_line(command):
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return ((done.stdout or done.stderr).splitlines() or [""])[0].split(" Copyright")[0]


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{datetime.now():%Y%m%d-%H%M%S}-{name}.md"
    path.write_text(text + "\n")
    return path
