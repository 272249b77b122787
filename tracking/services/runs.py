"""Runs and what they log: parameters (immutable once logged), tags, metric history (with the
latest value and the number of points per key kept beside it), input datasets and output
models."""

import uuid
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from audit import chain
from models_app.access import Role
from tracking.access import require_creator, require_experiment
from tracking.models import (
    Experiment,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Run,
    RunInput,
    RunOutput,
    RunParam,
    RunTag,
)
from tracking.services.experiments import now_ms
from tracking.services.limits import (
    MAX_DATASET_DIGEST,
    MAX_DATASET_NAME,
    MAX_DATASET_PROFILE,
    MAX_DATASET_SCHEMA,
    MAX_DATASET_SOURCE,
    MAX_DATASET_SOURCE_TYPE,
    MAX_DATASETS_PER_BATCH,
    MAX_INPUT_TAG_KEY,
    MAX_INPUT_TAG_VALUE,
    MAX_PARAM_VALUE,
    MAX_RUN_NAME,
    MAX_TAG_VALUE,
    check_batch,
    check_key,
    check_value,
    stored_value,
)

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
CONTEXT_TAG = "mlflow.data.context"


@dataclass(frozen=True)
class MetricIn:
    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str = ""


@dataclass(frozen=True)
class DatasetIn:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""
    tags: tuple[tuple[str, str], ...] = ()


def _writable(run: Run) -> None:
    """A deleted run, or a run of a deleted experiment, takes no writes (as MLflow)."""
    if run.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Run {run.pk} is deleted; restore it before logging to it.")
    if run.experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(
            f"Experiment {run.experiment_id} is deleted; restore it before logging to its runs."
        )


def _check_tags(tags) -> dict[str, str]:
    checked = {}
    for key, value in tags:
        check_key(key, "Tag")
        checked[key] = check_value(value, MAX_TAG_VALUE, "Tag")
    return checked


def run_create(
    *,
    actor,
    experiment: Experiment,
    name: str = "",
    start_time: int | None = None,
    tags: list[tuple[str, str]] = (),
) -> Run:
    """A new RUNNING run of ``experiment`` created by ``actor`` (whatever ``user_id`` the client
    sent; the ``mlflow.user`` tag says who it is). Edit role on the experiment."""
    require_experiment(actor, experiment, Role.EDIT)
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Experiment {experiment.pk} is deleted; restore it first.")
    tags = _check_tags(tags)
    run_id = uuid.uuid4().hex
    name = (name or tags.get(RUN_NAME_TAG, "") or f"run-{run_id[:8]}")[:MAX_RUN_NAME]
    tags[RUN_NAME_TAG] = name
    tags[USER_TAG] = actor.get_username()
    with transaction.atomic():
        run = Run.objects.create(
            id=run_id,
            experiment=experiment,
            name=name,
            start_time=start_time if start_time is not None else now_ms(),
            creator=actor,
        )
        RunTag.objects.bulk_create(RunTag(run=run, key=k, value=v) for k, v in tags.items())
        chain.record(
            actor=actor,
            action="run.created",
            target=run,
            after={"experiment_id": str(experiment.pk), "name": name, "tags": sorted(tags)},
        )
    return run


def _locked(run: Run) -> Run:
    row = Run.objects.select_for_update().select_related("experiment").get(pk=run.pk)
    row.creator = run.creator
    return row


def run_update(
    *, actor, run: Run, status: str = "", end_time: int | None = None, name: str = ""
) -> Run:
    """Change a run's status, end time or name. Its creator only."""
    require_creator(actor, run.creator_id, "run")
    if status and status not in Run.Status.values:
        raise ValidationError(f"Unknown run status {status[:40]!r}.")
    if len(name) > MAX_RUN_NAME:
        raise ValidationError(f"Run names are at most {MAX_RUN_NAME} characters.")
    with transaction.atomic():
        row = _locked(run)
        _writable(row)
        before = {"status": row.status, "end_time": row.end_time, "name": row.name}
        if status:
            row.status = status
        if end_time is not None:
            row.end_time = end_time
        if name:
            row.name = name
            RunTag.objects.update_or_create(run=row, key=RUN_NAME_TAG, defaults={"value": name})
        row.save(update_fields=["status", "end_time", "name"])
        after = {"status": row.status, "end_time": row.end_time, "name": row.name}
        chain.record(
            actor=actor,
            action="run.updated",
            target=row,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return row


def _set_lifecycle(*, actor, run: Run, stage: str, action: str) -> Run:
    require_creator(actor, run.creator_id, "run")
    with transaction.atomic():
        row = _locked(run)
        if row.lifecycle_stage == stage:
            raise ValidationError(f"Run {row.pk} is already {stage}.")
        before = row.lifecycle_stage
        row.lifecycle_stage = stage
        row.save(update_fields=["lifecycle_stage"])
        chain.record(
            actor=actor,
            action=action,
            target=row,
            before={"lifecycle_stage": before},
            after={"lifecycle_stage": stage},
        )
    return row


def run_delete(*, actor, run: Run) -> Run:
    return _set_lifecycle(actor=actor, run=run, stage=Lifecycle.DELETED, action="run.deleted")


def run_restore(*, actor, run: Run) -> Run:
    return _set_lifecycle(actor=actor, run=run, stage=Lifecycle.ACTIVE, action="run.restored")


@dataclass(frozen=True)
class _Point:
    step: int
    timestamp: int
    is_nan: bool
    value: float


def _rank(point) -> tuple:
    """MLflow's order for a run's latest metric value: step, then timestamp, then value (NaN
    lowest). ``point`` is a _Point or a LatestMetric."""
    return (point.step, point.timestamp, not point.is_nan, 0.0 if point.is_nan else point.value)


def run_log_batch(
    *,
    actor,
    run: Run,
    metrics: list[MetricIn] = (),
    params: list[tuple[str, str]] = (),
    tags: list[tuple[str, str]] = (),
) -> None:
    """Log metrics, parameters and tags to a run, all or nothing: a batch over MLflow's limits,
    a bad key or value, or a parameter logged again with another value refuses the whole call.
    The run's creator only. One audit event with the counts and keys (not the values)."""
    require_creator(actor, run.creator_id, "run")
    check_batch(metrics=len(metrics), params=len(params), tags=len(tags))
    for m in metrics:
        check_key(m.key, "Metric")
    new_params: dict[str, str] = {}
    for key, value in params:
        check_key(key, "Param")
        check_value(value, MAX_PARAM_VALUE, "Param")
        if new_params.get(key, value) != value:
            raise ValidationError(f"Param {key!r} is given twice with different values.")
        new_params[key] = value
    new_tags = _check_tags(tags)
    model_ids = {m.model_id for m in metrics if m.model_id}
    with transaction.atomic():
        row = _locked(run)
        _writable(row)
        if model_ids:
            known = set(
                LoggedModel.objects.filter(
                    pk__in=model_ids, experiment_id=row.experiment_id
                ).values_list("pk", flat=True)
            )
            if model_ids - known:
                raise ValidationError(
                    f"Unknown logged model {sorted(model_ids - known)[0][:40]!r} for a metric."
                )
        existing = dict(
            RunParam.objects.filter(run=row, key__in=new_params).values_list("key", "value")
        )
        for key, value in new_params.items():
            if key in existing and existing[key] != value:
                raise ValidationError(
                    f"Param {key!r} was already logged with value {existing[key][:100]!r}; "
                    f"a run's parameters cannot change (got {value[:100]!r})."
                )
        RunParam.objects.bulk_create(
            RunParam(run=row, key=k, value=v) for k, v in new_params.items() if k not in existing
        )
        for key, value in new_tags.items():
            RunTag.objects.update_or_create(run=row, key=key, defaults={"value": value})
            if key == RUN_NAME_TAG and value[:MAX_RUN_NAME] != row.name:
                row.name = value[:MAX_RUN_NAME]
                row.save(update_fields=["name"])
        _log_metrics(row, metrics)
        chain.record(
            actor=actor,
            action="run.data_logged",
            target=row,
            after={
                "metrics": len(metrics),
                "metric_keys": sorted({m.key for m in metrics}),
                "params": sorted(new_params),
                "tags": sorted(new_tags),
            },
        )


def _log_metrics(run: Run, metrics: list[MetricIn]) -> None:
    if not metrics:
        return
    rows, newest = [], {}
    for m in metrics:
        value, is_nan = stored_value(m.value)
        rows.append(
            Metric(
                run=run,
                key=m.key,
                value=value,
                is_nan=is_nan,
                timestamp=m.timestamp,
                step=m.step,
                model_id=m.model_id,
            )
        )
        point = _Point(m.step, m.timestamp, is_nan, value)
        if m.key not in newest or _rank(point) >= _rank(newest[m.key]):
            newest[m.key] = point
    Metric.objects.bulk_create(rows)
    added = Counter(m.key for m in metrics)
    current = {
        held.key: held
        for held in LatestMetric.objects.select_for_update().filter(run=run, key__in=newest)
    }
    for key, point in newest.items():
        held = current.get(key)
        if held is None:
            LatestMetric.objects.create(
                run=run,
                key=key,
                value=point.value,
                is_nan=point.is_nan,
                timestamp=point.timestamp,
                step=point.step,
                history_count=added[key],
            )
            continue
        # the history's length grows with every batch, whether or not it moves the latest value
        held.history_count = F("history_count") + added[key]
        fields = ["history_count"]
        if _rank(point) >= _rank(held):
            held.value, held.is_nan = point.value, point.is_nan
            held.timestamp, held.step = point.timestamp, point.step
            fields += ["value", "is_nan", "timestamp", "step"]
        held.save(update_fields=fields)


def run_delete_tag(*, actor, run: Run, key: str) -> None:
    """The run's creator only; RunTag.DoesNotExist for a tag the run does not have."""
    require_creator(actor, run.creator_id, "run")
    with transaction.atomic():
        row = _locked(run)
        _writable(row)
        deleted, _ = RunTag.objects.filter(run=row, key=key).delete()
        if not deleted:
            raise RunTag.DoesNotExist(f"Run {row.pk} has no tag {key[:100]!r}.")
        chain.record(actor=actor, action="run.tag_deleted", target=row, before={"tag": key})


def run_log_inputs(*, actor, run: Run, datasets: list[DatasetIn]) -> None:
    """Record datasets the run used (a dataset already recorded, same name and digest, is
    kept as it was). The run's creator only."""
    require_creator(actor, run.creator_id, "run")
    if len(datasets) > MAX_DATASETS_PER_BATCH:
        raise ValidationError(f"At most {MAX_DATASETS_PER_BATCH} datasets per call.")
    for d in datasets:
        for value, limit, what in (
            (d.name, MAX_DATASET_NAME, "Dataset name"),
            (d.digest, MAX_DATASET_DIGEST, "Dataset digest"),
            (d.source_type, MAX_DATASET_SOURCE_TYPE, "Dataset source_type"),
            (d.source, MAX_DATASET_SOURCE, "Dataset source"),
            (d.schema, MAX_DATASET_SCHEMA, "Dataset schema"),
            (d.profile, MAX_DATASET_PROFILE, "Dataset profile"),
        ):
            check_value(value, limit, what)
        if not (d.name and d.digest and d.source_type and d.source):
            raise ValidationError("A dataset needs a name, digest, source_type and source.")
        for key, value in d.tags:
            if not key or len(key) > MAX_INPUT_TAG_KEY:
                raise ValidationError(f"Input tag keys are 1 to {MAX_INPUT_TAG_KEY} characters.")
            check_value(value, MAX_INPUT_TAG_VALUE, "Input tag")
    with transaction.atomic():
        row = _locked(run)
        _writable(row)
        have = set(RunInput.objects.filter(run=row).values_list("name", "digest"))
        added = []
        for d in datasets:
            if (d.name, d.digest) in have:
                continue
            have.add((d.name, d.digest))
            tags = dict(d.tags)
            added.append(
                RunInput(
                    run=row,
                    name=d.name,
                    digest=d.digest,
                    source_type=d.source_type,
                    source=d.source,
                    schema=d.schema,
                    profile=d.profile,
                    context=tags.get(CONTEXT_TAG, "")[:500],
                    tags=[{"key": k, "value": v} for k, v in d.tags],
                )
            )
        RunInput.objects.bulk_create(added)
        chain.record(
            actor=actor,
            action="run.inputs_logged",
            target=row,
            after={
                "datasets": [
                    {"name": i.name, "digest": i.digest, "context": i.context} for i in added
                ]
            },
        )


def run_log_outputs(*, actor, run: Run, models: list[tuple[str, int]]) -> None:
    """Record logged models (of the run's experiment, visible to the actor) as outputs of the
    run at a step. The run's creator only."""
    require_creator(actor, run.creator_id, "run")
    with transaction.atomic():
        row = _locked(run)
        _writable(row)
        ids = {model_id for model_id, _ in models}
        known = {
            m.pk: m
            for m in LoggedModel.objects.filter(pk__in=ids, experiment_id=row.experiment_id)
            if m.creator_id == actor.pk or actor.is_superuser
        }
        if ids - set(known):
            raise ValidationError(f"Unknown logged model {sorted(ids - set(known))[0][:40]!r}.")
        for model_id, step in models:
            RunOutput.objects.update_or_create(
                run=row, logged_model=known[model_id], defaults={"step": step}
            )
        chain.record(
            actor=actor,
            action="run.outputs_logged",
            target=row,
            after={"models": [{"model_id": m, "step": s} for m, s in models]},
        )
