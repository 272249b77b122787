"""Routes of the tracking API (experiments, runs, metrics, logged models), included under both
/api/2.0/ (where the MLflow client calls them) and /api/3.0/ (see docs/mlflow.md)."""

from django.urls import path

from registry_site.mlflow_compat.views import experiments, logged_models, runs

experiment = "mlflow/experiments/"
run = "mlflow/runs/"
logged = "mlflow/logged-models"

urlpatterns = [
    path(experiment + "create", experiments.create, name="experiment_create"),
    path(experiment + "get", experiments.get, name="experiment_get"),
    path(experiment + "get-by-name", experiments.get_by_name, name="experiment_get_by_name"),
    path(experiment + "search", experiments.search, name="experiment_search"),
    path(experiment + "update", experiments.update, name="experiment_update"),
    path(experiment + "delete", experiments.delete, name="experiment_delete"),
    path(experiment + "restore", experiments.restore, name="experiment_restore"),
    path(experiment + "set-experiment-tag", experiments.set_tag, name="experiment_set_tag"),
    path(
        experiment + "delete-experiment-tag",
        experiments.delete_tag,
        name="experiment_delete_tag",
    ),
    path(run + "create", runs.create, name="run_create"),
    path(run + "get", runs.get, name="run_get"),
    path(run + "update", runs.update, name="run_update"),
    path(run + "delete", runs.delete, name="run_delete"),
    path(run + "restore", runs.restore, name="run_restore"),
    path(run + "search", runs.search, name="run_search"),
    path(run + "log-batch", runs.log_batch, name="run_log_batch"),
    path(run + "log-metric", runs.log_metric, name="run_log_metric"),
    path(run + "log-parameter", runs.log_parameter, name="run_log_parameter"),
    path(run + "set-tag", runs.set_tag, name="run_set_tag"),
    path(run + "delete-tag", runs.delete_tag, name="run_delete_tag"),
    path(run + "log-inputs", runs.log_inputs, name="run_log_inputs"),
    path(run + "outputs", runs.log_outputs, name="run_log_outputs"),
    path("mlflow/metrics/get-history", runs.metric_history, name="metric_history"),
    path(logged, logged_models.create, name="logged_model_create"),
    path(logged + "/search", logged_models.search, name="logged_model_search"),
    path(logged + "/<str:model_id>", logged_models.logged_model, name="logged_model"),
    path(logged + "/<str:model_id>/tags", logged_models.set_tags, name="logged_model_set_tags"),
    path(
        logged + "/<str:model_id>/tags/<path:key>",
        logged_models.delete_tag,
        name="logged_model_delete_tag",
    ),
    path(logged + "/<str:model_id>/params", logged_models.log_params, name="logged_model_params"),
]
