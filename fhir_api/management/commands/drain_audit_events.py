"""manage.py drain_audit_events: move every queued AuditEvent into the FHIR store now.

Requests queue their AuditEvents and the server drains the queue on its own (see
`fhir_api.audit_log`); this is for operators: before a backup or a report read straight from
the database, or from cron on a server that has gone quiet.
"""

from django.core.management.base import BaseCommand

from fhir_api.audit_log import drain


class Command(BaseCommand):
    help = "Move every queued AuditEvent into the FHIR store."

    def handle(self, *args, **options):
        moved = drain(wait=True)
        self.stdout.write(f"Moved {moved} queued AuditEvent(s) into the store.")
