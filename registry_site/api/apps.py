from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "registry_site.api"
    label = "api"
    verbose_name = "JSON API"
