from django.apps import AppConfig


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        from registry_site import connections

        connections.connect()
