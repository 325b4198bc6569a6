"""Two gunicorn servers on one PostgreSQL database and one Redis, configured for production.

A scratch database (smart_fhir_multihost_<random>) is created and prepared (prepare.py);
both servers get the same SECRET_KEY, signing key file, PUBLIC_BASE_URL and CACHE_URL (Redis,
under a key prefix of its own), as two hosts behind one load balancer would. `stop()` ends
the servers, drops the database and deletes the cache keys.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.multihost.web import PUBLIC_BASE_URL, PUBLIC_HOST, Host

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS = {"host": "127.0.0.1", "port": 6379}
REDIS_DB = 9
DEMO_PASSWORD = "multihost-" + secrets.token_hex(8)
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


def redis_is_up():
    try:
        return redis.Redis(**REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


class Cluster:
    def __init__(self, database, folder):
        """`database`: Django's DATABASES entry whose server and role to use."""
        self.folder = folder
        self.server_db = {
            key: value
            for key, value in {
                "host": database["HOST"] or "127.0.0.1",
                "port": database["PORT"] or 5432,
                "user": database["USER"],
                "password": database["PASSWORD"],
            }.items()
            if value
        }
        self.name = "smart_fhir_multihost_" + secrets.token_hex(4)
        self.key_prefix = self.name
        self.processes = []
        self.hosts = []
        self.env = self._environment()

    def _environment(self):
        key_file = self.folder / "signing-key.pem"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        db = self.server_db
        password = f":{quote(db['password'], safe='')}" if "password" in db else ""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")
            and not k.startswith(("SMART_", "PYTEST", "DJANGO_ALLOW"))
        }
        return {
            **env,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": PUBLIC_HOST,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "DATABASE_URL": (
                f"postgres://{db['user']}{password}@{db['host']}:{db['port']}/{self.name}"
            ),
            "CACHE_URL": (
                f"redis://{REDIS['host']}:{REDIS['port']}/{REDIS_DB}?key_prefix={self.key_prefix}"
            ),
            "SMART_SIGNING_KEY_FILE": str(key_file),
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "LOG_LEVEL": "WARNING",
            "STATIC_ROOT": str(self.folder / "static"),  # not the checkout's staticfiles/
        }

    def start(self):
        self._admin(f'CREATE DATABASE "{self.name}"')
        self._run(str(Path(__file__).with_name("prepare.py")))
        self.hosts = [self._serve(name) for name in ("A", "B")]
        return self.hosts

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        client = redis.Redis(**REDIS, db=REDIS_DB)
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*"))
        if keys:
            client.delete(*keys)

    def sql(self, statement, params=()):
        """Run one statement in the cluster's database (set-up the API does not offer)."""
        with psycopg.connect(dbname=self.name, autocommit=True, **self.server_db) as connection:
            connection.execute(statement, params)

    def _admin(self, statement):
        with psycopg.connect(dbname="postgres", autocommit=True, **self.server_db) as connection:
            connection.execute(statement)

    def _run(self, *args):
        done = subprocess.run(
            [str(BIN / "python"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stderr}"

    def _serve(self, name):
        """Start one gunicorn on a free port; return its Host once it answers."""
        log = self.folder / f"gunicorn-{name}.log"
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"gunicorn {name} exited:\n{log.read_text()}"
            found = LISTENING.search(log.read_text())
            if found:
                host = Host(name, int(found.group(1)))
                if self._answers(host):
                    return host
            time.sleep(0.2)
        raise AssertionError(f"gunicorn {name} did not start:\n{log.read_text()}")

    @staticmethod
    def _answers(host):
        try:
            return host.get("/.well-known/smart-configuration").status == 200
        except OSError:
            return False
