"""The servers a run measures, each a child process group started and stopped by the driver:
the product and the bare Django view under the same gunicorn settings, and node-oidc-provider.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.harness import PYTHON, ROOT

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
OIDC_PROVIDER = "oidc-provider@9.13"
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "oidc_provider.mjs"


class Server:
    """A started process serving `url`; `stop()` ends it and its workers."""

    def __init__(self, name, command, *, port, env, health, log):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        _require_free(port)
        self.log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_up(health)

    def _wait_until_up(self, health, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + health, timeout=5):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not start within {seconds} s; see {self.log.name}")

    def worker_pids(self):
        """The PIDs of the processes serving requests (gunicorn workers, cluster workers)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self):
        stop_process(self.process)
        self.log.close()


def gunicorn(name, app, *, port, env, log, workers, worker_class, threads):
    """`app` under gunicorn as `make run` serves the product, on 127.0.0.1:`port`."""
    command = [
        str(GUNICORN),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
    ]
    if worker_class == "gthread":
        command += ["--threads", str(threads)]
    return Server(name, command, port=port, env=env, health="/", log=log)


def drain_process(env, *, log):
    """`manage.py drain_audit_events --every 1` beside the product (`--drain-process`)."""
    with open(log, "w") as output:
        return subprocess.Popen(
            [str(PYTHON), "manage.py", "drain_audit_events", "--every", "1"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process):
    """End a process started in a session of its own, and its children (gunicorn's workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def install_oidc_provider(folder):
    """node-oidc-provider from the npm registry into `folder` (once), beside our server script."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "node_modules" / "oidc-provider").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is missing: install Node.js and npm to benchmark the peers")
        print(f"Installing {OIDC_PROVIDER} into {folder}...", flush=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", OIDC_PROVIDER],
            cwd=folder,
            check=True,
        )
    # Bare imports resolve from the script's own folder, so it runs from there.
    shutil.copy(PEER_SCRIPT, folder / PEER_SCRIPT.name)
    return folder / PEER_SCRIPT.name


def oidc_provider(script, *, port, client_id, secret, log):
    env = {
        "PEER_PORT": str(port),
        "PEER_CLIENT_ID": client_id,
        "PEER_CLIENT_SECRET": secret,
        "NODE_ENV": "production",
    }
    command = [shutil.which("node") or "node", str(script)]
    return Server("node-oidc-provider", command, port=port, env=env, health="/jwks", log=log)


def rss_mb(pid):
    """Resident memory of a process, in MB, from /proc/<pid>/status."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return 0.0


def _require_free(port):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"Port {port} is in use; choose others with --port")
