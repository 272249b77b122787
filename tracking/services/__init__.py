"""Every change of the tracking data: one function per change, each in one transaction with
its audit event (one event per call)."""

from tracking.services.experiments import (
    experiment_create,
    experiment_delete,
    experiment_delete_tag,
    experiment_rename,
    experiment_restore,
    experiment_set_tag,
)
from tracking.services.files import tracked_file_put
from tracking.services.logged_models import (
    logged_model_create,
    logged_model_delete_tag,
    logged_model_finalize,
    logged_model_log_params,
    logged_model_set_tags,
)
from tracking.services.runs import (
    DatasetIn,
    MetricIn,
    run_create,
    run_delete,
    run_delete_tag,
    run_log_batch,
    run_log_inputs,
    run_log_outputs,
    run_restore,
    run_update,
)
from tracking.services.sharing import experiment_sharing_set

__all__ = [
    "DatasetIn",
    "MetricIn",
    "experiment_create",
    "experiment_delete",
    "experiment_delete_tag",
    "experiment_rename",
    "experiment_restore",
    "experiment_set_tag",
    "experiment_sharing_set",
    "logged_model_create",
    "logged_model_delete_tag",
    "logged_model_finalize",
    "logged_model_log_params",
    "logged_model_set_tags",
    "run_create",
    "run_delete",
    "run_delete_tag",
    "run_log_batch",
    "run_log_inputs",
    "run_log_outputs",
    "run_restore",
    "run_update",
    "tracked_file_put",
]
