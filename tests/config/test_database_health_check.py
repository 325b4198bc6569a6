"""The health check of a persistent PostgreSQL connection (config.postgresql): a connection the
server ended is replaced before the next request uses it, and a live one costs no round trip."""

import select
import tempfile

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from psycopg import pq

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the backend is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


def statements_sent(action):
    """The SQL `action` sends on Django's connection, read from libpq's protocol trace."""
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            action()
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = trace.read().decode().splitlines()
    # Frontend messages: F <length> Query "<sql>" (simple protocol) or Parse ... "<sql>".
    return [
        line[line.index('"') + 1 : line.rindex('"')]
        for line in lines
        if line.startswith("F") and '"' in line
    ]


def new_request():
    """What Django does when a request starts (request_started → close_old_connections)."""
    close_old_connections()


def end_server_side(pid):
    """Have PostgreSQL end the backend `pid` (as a restart or an idle timeout would), and wait
    until its goodbye reaches our socket."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(5000), "the server's goodbye never arrived"


def test_a_live_connection_is_checked_without_a_round_trip():
    User = get_user_model()
    connection.close()  # a new connection, well within CONN_MAX_AGE
    User.objects.exists()
    new_request()
    sent = statements_sent(lambda: User.objects.exists())
    assert len(sent) == 1
    assert "auth_user" in sent[0]


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it():
    User = get_user_model()
    connection.close()  # a new connection: only the check may replace it, not its age
    User.objects.create_user("still-here")
    ended = connection.connection.info.backend_pid
    end_server_side(ended)

    new_request()
    assert User.objects.filter(username="still-here").exists()
    assert connection.connection.info.backend_pid != ended
