from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Reviews and approvals"

    def ready(self):
        from approvals.webhooks.events import SUBSCRIBER  # (models are loaded only now)
        from audit import chain

        chain.subscribe(SUBSCRIBER)
