"""Routes of the MLflow API's 3.0 prefix, to be included at /api/3.0/ (see docs/mlflow.md)."""

from django.urls import path

from registry_site.mlflow_compat import urls_tracking
from registry_site.mlflow_compat.views import server

app_name = "mlflow3"

urlpatterns = [
    path("mlflow/server-info", server.server_info, name="server_info"),
    *urls_tracking.urlpatterns,
]
