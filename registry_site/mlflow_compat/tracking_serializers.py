"""The tracking objects in MLflow's wire shapes (ids as strings, times in milliseconds)."""

from tracking.models import Experiment, LoggedModel, Metric, Run


def metric_value(metric) -> float | str:
    """NaN goes out as the string "NaN", as protobuf's JSON mapping writes it; ±infinity was
    stored as the largest finite double, as MLflow stores it."""
    return "NaN" if metric.is_nan else metric.value


def describe_experiment(experiment: Experiment) -> dict:
    described = {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": experiment.creation_time,
        "last_update_time": experiment.last_update_time,
    }
    tags = [{"key": t.key, "value": t.value} for t in experiment.tags.all()]
    if tags:
        described["tags"] = tags
    return described


def run_lifecycle(run: Run) -> str:
    """A run of a deleted experiment reads as deleted."""
    if run.experiment.lifecycle_stage != "active":
        return run.experiment.lifecycle_stage
    return run.lifecycle_stage


def describe_run_info(run: Run) -> dict:
    info = {
        "run_id": run.pk,
        "run_uuid": run.pk,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.creator.get_username(),
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run_lifecycle(run),
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def describe_metric(metric, *, with_model: bool = False) -> dict:
    described = {
        "key": metric.key,
        "value": metric_value(metric),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    if with_model and getattr(metric, "model_id", ""):
        described["model_id"] = metric.model_id
    return described


def describe_run(run: Run) -> dict:
    """A run fetched through tracking.selectors.runs_with_data."""
    data = {}
    metrics = [describe_metric(m) for m in run.latest_metrics.all()]
    params = [{"key": p.key, "value": p.value} for p in run.params.all()]
    tags = [{"key": t.key, "value": t.value} for t in run.tags.all()]
    for name, rows in (("metrics", metrics), ("params", params), ("tags", tags)):
        if rows:
            data[name] = rows
    inputs = [
        {
            "tags": i.tags,
            "dataset": {
                "name": i.name,
                "digest": i.digest,
                "source_type": i.source_type,
                "source": i.source,
                **({"schema": i.schema} if i.schema else {}),
                **({"profile": i.profile} if i.profile else {}),
            },
        }
        for i in run.inputs.all()
    ]
    outputs = [{"model_id": o.logged_model_id, "step": o.step} for o in run.outputs.all()]
    described = {"info": describe_run_info(run), "data": data, "inputs": {}}
    if inputs:
        described["inputs"]["dataset_inputs"] = inputs
    if outputs:
        described["outputs"] = {"model_outputs": outputs}
    return described


def describe_logged_model(model: LoggedModel, metrics: list[Metric] = ()) -> dict:
    """A logged model fetched through tracking.selectors.logged_models_with_data."""
    info = {
        "model_id": model.pk,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "artifact_uri": model.artifact_uri,
        "status": model.status,
        "creator_id": model.creator_id,
        "creation_timestamp_ms": model.creation_time,
        "last_updated_timestamp_ms": model.last_update_time,
        "lifecycle_stage": (
            model.experiment.lifecycle_stage
            if model.experiment.lifecycle_stage != "active"
            else model.lifecycle_stage
        ),
    }
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    if model.model_type:
        info["model_type"] = model.model_type
    tags = [{"key": t.key, "value": t.value} for t in model.tags.all()]
    params = [{"key": p.key, "value": p.value} for p in model.params.all()]
    if tags:
        info["tags"] = tags
    if params:
        info["params"] = params
    data = {}
    if metrics:
        data["metrics"] = [
            {**describe_metric(m), "run_id": m.run_id, "model_id": model.pk} for m in metrics
        ]
    return {"info": info, "data": data}
