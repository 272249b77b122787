from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The tamper-evident audit log. Every other app writes to it; it imports none of them."""

    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        # start-up: receivers use the models, loaded only now; importing connects them
        from audit import receivers  # noqa: F401 (start-up)
