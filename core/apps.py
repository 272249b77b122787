from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every layer needs and that knows no domain: SQL helpers, error types, route rules."""

    name = "core"
    verbose_name = "Core"
