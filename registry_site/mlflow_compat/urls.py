"""Routes of the MLflow-compatible API, under /api/2.0/ (see docs/mlflow.md)."""

from django.urls import path

from registry_site.mlflow_compat import urls_tracking
from registry_site.mlflow_compat.views import artifacts, model_versions, registered_models

app_name = "mlflow"

models = "mlflow/registered-models/"
versions = "mlflow/model-versions/"

urlpatterns = [
    path(models + "create", registered_models.create, name="model_create"),
    path(models + "get", registered_models.get, name="model_get"),
    path(models + "update", registered_models.update, name="model_update"),
    path(models + "rename", registered_models.rename, name="model_rename"),
    path(models + "delete", registered_models.delete, name="model_delete"),
    path(models + "search", registered_models.search, name="model_search"),
    path(
        models + "get-latest-versions",
        registered_models.get_latest_versions,
        name="model_latest_versions",
    ),
    path(models + "set-tag", registered_models.set_tag, name="model_set_tag"),
    path(models + "delete-tag", registered_models.delete_tag, name="model_delete_tag"),
    path(models + "alias", registered_models.alias, name="model_alias"),
    path(versions + "create", model_versions.create, name="version_create"),
    path(versions + "get", model_versions.get, name="version_get"),
    path(versions + "update", model_versions.update, name="version_update"),
    path(versions + "delete", model_versions.delete, name="version_delete"),
    path(versions + "transition-stage", model_versions.transition_stage, name="version_stage"),
    path(versions + "search", model_versions.search, name="version_search"),
    path(
        versions + "get-download-uri",
        model_versions.get_download_uri,
        name="version_download_uri",
    ),
    path(versions + "set-tag", model_versions.set_tag, name="version_set_tag"),
    path(versions + "delete-tag", model_versions.delete_tag, name="version_delete_tag"),
    path("mlflow-artifacts/artifacts", artifacts.artifact_list, name="artifact_list"),
    path("mlflow-artifacts/artifacts/<path:path>", artifacts.artifact, name="artifact"),
    *urls_tracking.urlpatterns,
]
