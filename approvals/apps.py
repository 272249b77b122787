from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Reviews and approvals"

    def ready(self):
        # start-up: both use the models, which are loaded only now
        from approvals.webhooks.events import SUBSCRIBER  # start-up
        from audit import chain  # start-up

        chain.subscribe(SUBSCRIBER)
