"""The site's URLs plus the MLflow 3.0 prefix, for testing the server-info probe before the
project's urls.py routes it."""

from django.urls import include, path

from registry_site.urls import urlpatterns as site

urlpatterns = [
    path("api/3.0/", include("registry_site.mlflow_compat.urls_v3")),
    *site,
]
