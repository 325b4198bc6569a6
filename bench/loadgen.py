"""Driving a server with wrk from a second process, and reading back what it measured.

Requests go in a file of tab-separated lines (METHOD, PATH, BODY, "Name: value" headers) that
bench/wrk/requests.lua sends; `probe` sends one such line first with http.client so a workload
the server refuses (say, a grant type it does not support yet) becomes one error row with the
server's own answer, instead of a run of errors.
"""

import http.client
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses and socket errors
    wrapped: int  # single-use items sent a second time
    starved: int
    resources_per_request: int = 0  # a write's resources, for resources/s

    @property
    def rps(self):
        return self.requests / self.seconds


def require_wrk():
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `apt-get install wrk` (make bench does it)")


def line(method, path, body="", headers=()):
    """One request line for requests.lua."""
    fields = [method, path, body, *(f"{name}: {value}" for name, value in headers)]
    if any("\t" in field or "\n" in field for field in fields):
        raise ValueError("request fields may not contain tabs or newlines")
    return "\t".join(fields)


def write_lines(path, lines):
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def probe(base_url, request_line):
    """Send one request line; None if it succeeded, else 'status: body' for the error row."""
    method, path, body, *headers = request_line.split("\t")
    host_port = base_url.split("://", 1)[1]
    connection = http.client.HTTPConnection(host_port, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=body.encode() or None,
            headers=dict(header.split(": ", 1) for header in headers),
        )
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    if response.status < 400:
        return None
    return f"HTTP {response.status}: {content[:300].decode(errors='replace')}"


def drive(url, prepared, seconds, options):
    """wrk with a prepared workload's script and arguments, at the run's --connections and
    --threads (`options`: bench/run.py's parsed arguments)."""
    return run_wrk(
        url,
        prepared.script,
        prepared.args,
        seconds=seconds,
        connections=options.connections,
        threads=options.threads,
    )


def run_wrk(url, script, args, *, seconds, connections, threads):
    """Run wrk against `url` for `seconds` with a script of bench/wrk and its arguments."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPTS / script),
        url,
        "--",
        *map(str, args),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    summary = next(
        (json.loads(row[6:]) for row in output.splitlines() if row.startswith("BENCH ")), None
    )
    if summary is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    return Result(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=summary["status_errors"] + summary["socket_errors"],
        wrapped=summary["wrapped"],
        starved=summary["starved"],
    )
