"""What every benchmark script shares: a scratch database no one else uses, and Django on it."""

import os
import tempfile
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


def run_in_scratch_database(database_url, prefix, run, args):
    """Call `run(args)` with Django set up on a fresh database made from `database_url`.

    SQLite: a temporary file. PostgreSQL: a database created beside the one named (whose
    server must let this role CREATE DATABASE) and dropped at the end, even on failure.
    """
    with scratch_database(database_url, prefix) as url:
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        try:
            run(args)
        finally:
            from django.db import connections

            connections.close_all()


@contextmanager
def scratch_database(url, prefix):
    if url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
