"""The product as production runs it, in a scratch corner: its own PostgreSQL database (created
and dropped), Redis database, signing key and settings from the environment.

`ProductEnv` is the set of environment variables every process of a run shares: the gunicorn
workers, `manage.py` commands, and the driver itself, which sets up Django with the same
settings to register apps and mint codes through the ORM.
"""

import os
import secrets
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "bench" / ".scratch"
RESULTS = ROOT / "bench" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
DB_ROLE = "smart_fhir"


def ensure_role(admin_url):
    """The product's role, as CI makes it: a login role that may create databases."""
    import psycopg

    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DB_ROLE]).fetchone()
        if found is None:
            admin.execute(f"CREATE ROLE {DB_ROLE} LOGIN CREATEDB")


@contextmanager
def scratch_database(admin_url, prefix="bench", settings=None):
    """The URL of a new database owned by the product's role, dropped afterwards (even on
    failure), with `settings` (PostgreSQL parameters) as its defaults. `admin_url` names a
    server and a role allowed to create roles and databases."""
    import psycopg

    try:
        ensure_role(admin_url)
    except psycopg.OperationalError as error:
        raise SystemExit(
            f"PostgreSQL is not reachable at {admin_url} ({error}); start it, or name a server "
            "and a role that may create roles and databases with --admin-url"
        ) from None
    parts = urlsplit(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" OWNER {DB_ROLE}')
        for parameter, value in (settings or {}).items():
            admin.execute(f'ALTER DATABASE "{name}" SET {parameter} = {value}')
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    try:
        yield f"postgres://{DB_ROLE}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url):
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


def redis_cache_url(db):
    """CACHE_URL of an emptied Redis database, or None when Redis is not reachable (the
    product then uses its database cache)."""
    try:
        import redis
    except ImportError:
        return None
    try:
        redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=2).flushdb()
    except redis.RedisError:
        return None
    return f"redis://127.0.0.1:6379/{db}"


def write_signing_key(folder):
    """A new RS256 private key in PEM, as an operator would provision SMART_SIGNING_KEY_FILE."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = Path(folder) / "signing-key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def product_env(*, port, database_url, cache_url, key_file):
    """Production settings (DEBUG off, every required setting chosen), on loopback http."""
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # testserver: the driver registers apps and mints codes with Django's test client.
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "SMART_SIGNING_KEY_FILE": str(key_file),
        "LOG_LEVEL": "WARNING",
        # Not the checkout's staticfiles/: the test suite would serve (and scan) them after.
        "STATIC_ROOT": str(SCRATCH / "static"),
    }
    if cache_url:
        env["CACHE_URL"] = cache_url
    return env


def manage(env, *args, capture=False):
    """Run `manage.py` with the product's settings; its output if `capture`."""
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=capture,
        text=True,
    )
    return result.stdout if capture else None


def setup_django(env):
    """Django in this process, with the product's settings, for the ORM work of a run."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
