"""manage.py drain_audit_events: move every queued AuditEvent into the FHIR store.

Requests queue their AuditEvents and each server process drains the queue on its own after a
response (see `fhir_api.audit_log`). That drain holds up the requests queued behind the
process while it runs. With `--every SECONDS` this command is the drain instead: run it as a
process of its own beside the web server and set `AUDIT_DRAIN_SECONDS=off` there, and no
request waits for a drain. Without it, it drains once and exits: before a backup or a report
read straight from the database, or from cron on a server that has gone quiet.
"""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from fhir_api.audit_log import drain, drain_until


class Command(BaseCommand):
    help = "Move every queued AuditEvent into the FHIR store (with --every, again and again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="keep draining, this many seconds apart, until SIGTERM or Ctrl-C",
        )

    def handle(self, *args, every=None, **options):
        if every is None:
            moved = drain(wait=True)
            self.stdout.write(f"Moved {moved} queued AuditEvent(s) into the store.")
            return
        if every <= 0:  # stop.wait(0) would drain in a busy loop
            raise CommandError("--every takes a number of seconds above 0")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(f"Draining queued AuditEvents every {every:g} s.")
        drain_until(stop, every)
