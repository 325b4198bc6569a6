from django.apps import AppConfig


class SmartAuthConfig(AppConfig):
    name = "smart_auth"
    verbose_name = "SMART authorization"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
