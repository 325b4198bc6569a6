"""Django's PostgreSQL backend with a health check that costs no round trip when nothing is wrong.

With CONN_HEALTH_CHECKS a persistent connection is checked before each request's first
statement, so a connection the server dropped (a restart, a failover, an idle timeout,
`pg_terminate_backend`) is replaced instead of failing that request. Django checks with a
`SELECT 1`: one round trip on every request, a quarter of a FHIR read's.

A server that ends a connection tells the client: it sends its FATAL message, then closes the
socket. An idle connection the server has not dropped has nothing to read. So the check first
asks the kernel, without waiting, whether the socket has anything to read. A quiet socket is a
live connection; anything else (data, end of file, an error) gets Django's full check, which
replaces the connection if the `SELECT 1` fails. A peer that vanished without a word (a host
lost at once, a network cut) is caught by neither check until TCP gives up.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.health_check_enabled
            and not self.health_check_done
            and self.connection is not None
            and is_quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def is_quiet(connection):
    """True if the idle psycopg `connection` is open and its socket has nothing to read."""
    pgconn = connection.pgconn
    if pgconn.status != pq.ConnStatus.OK:
        return False
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()  # not select.select, which fails on descriptors above 1023
    poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
