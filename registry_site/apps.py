from django.apps import AppConfig

from registry_site import health_checks


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        health_checks.connect()
