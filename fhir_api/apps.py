from django.apps import AppConfig
from django.core.signals import request_finished


class FhirApiConfig(AppConfig):
    name = "fhir_api"
    verbose_name = "FHIR store"

    def ready(self):
        from .audit_log import drain_if_due

        # Fires once the response has been sent: queued AuditEvents move then, not while the
        # client waits.
        request_finished.connect(drain_if_due, dispatch_uid="fhir_api.audit_drain")
