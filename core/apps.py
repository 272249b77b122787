from django.apps import AppConfig

from core import lookups


class CoreConfig(AppConfig):
    """What every layer needs and that knows no domain: SQL helpers, error types, route rules,
    the ``__among`` lookup (core/lookups.py)."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        lookups.register()
