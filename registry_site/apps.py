from django.apps import AppConfig

from registry_site import connections


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        connections.connect()
