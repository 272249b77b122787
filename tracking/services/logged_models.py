"""Logged models: created PENDING by a training script, their files uploaded under their
artifact location, then finalized READY (or UPLOAD_FAILED)."""

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction

from audit import chain
from models_app.access import Role
from tracking.access import require_creator, require_experiment
from tracking.models import (
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelParam,
    LoggedModelTag,
    Run,
)
from tracking.services.experiments import now_ms
from tracking.services.limits import (
    MAX_KEY,
    MAX_PARAM_VALUE,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VALUE,
    check_key,
    check_value,
)


def _check_pairs(pairs, limit: int, what: str) -> dict[str, str]:
    checked = {}
    for key, value in pairs:
        check_key(key, what)
        checked[key] = check_value(value, limit, what)
    return checked


def _check_params(params) -> dict[str, str]:
    if len(params) > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationError(
            f"At most {MAX_PARAMS_TAGS_PER_BATCH} params per call (got {len(params)})."
        )
    return _check_pairs(params, MAX_PARAM_VALUE, "Param")


def logged_model_create(
    *,
    actor,
    experiment: Experiment,
    name: str,
    source_run: Run | None = None,
    model_type: str = "",
    params: list[tuple[str, str]] = (),
    tags: list[tuple[str, str]] = (),
) -> LoggedModel:
    """A PENDING logged model in ``experiment``. Edit role on the experiment, and, with a
    source run, being that run's creator (it must be a run of the same experiment)."""
    require_experiment(actor, experiment, Role.EDIT)
    if source_run is not None:
        require_creator(actor, source_run.creator_id, "run")
        if source_run.experiment_id != experiment.pk:
            raise ValidationError("The source run belongs to another experiment.")
        if source_run.lifecycle_stage != Lifecycle.ACTIVE:
            raise ValidationError(f"Run {source_run.pk} is deleted.")
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Experiment {experiment.pk} is deleted; restore it first.")
    if not name or len(name) > MAX_KEY:
        raise ValidationError(f"A logged model needs a name of 1 to {MAX_KEY} characters.")
    check_value(model_type, MAX_KEY, "Model type")
    params = _check_params(params)
    tags = _check_pairs(tags, MAX_TAG_VALUE, "Tag")
    stamp = now_ms()
    with transaction.atomic():
        model = LoggedModel.objects.create(
            id=f"m-{uuid.uuid4().hex}",
            experiment=experiment,
            source_run=source_run,
            name=name,
            model_type=model_type,
            creator=actor,
            creation_time=stamp,
            last_update_time=stamp,
        )
        LoggedModelParam.objects.bulk_create(
            LoggedModelParam(logged_model=model, key=k, value=v) for k, v in params.items()
        )
        LoggedModelTag.objects.bulk_create(
            LoggedModelTag(logged_model=model, key=k, value=v) for k, v in tags.items()
        )
        chain.record(
            actor=actor,
            action="logged_model.created",
            target=model,
            after={
                "experiment_id": str(experiment.pk),
                "name": name,
                "source_run_id": source_run.pk if source_run else "",
                "params": sorted(params),
                "tags": sorted(tags),
            },
        )
    return model


def _locked(model: LoggedModel) -> LoggedModel:
    row = LoggedModel.objects.select_for_update().select_related("experiment").get(pk=model.pk)
    if row.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Logged model {row.pk} is deleted.")
    if row.experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Experiment {row.experiment_id} is deleted; restore it first.")
    return row


def _touch(row: LoggedModel) -> None:
    row.last_update_time = now_ms()
    row.save(update_fields=["status", "last_update_time"])


def logged_model_finalize(*, actor, model: LoggedModel, status: str) -> LoggedModel:
    """PENDING → READY (its files are uploaded) or UPLOAD_FAILED. Its creator only."""
    require_creator(actor, model.creator_id, "logged model")
    if status not in (LoggedModel.Status.READY, LoggedModel.Status.FAILED):
        raise ValidationError(
            f"A logged model is finalized as {LoggedModel.Status.READY} or "
            f"{LoggedModel.Status.FAILED}, not {status[:40]!r}."
        )
    with transaction.atomic():
        row = _locked(model)
        before = row.status
        row.status = status
        _touch(row)
        chain.record(
            actor=actor,
            action="logged_model.finalized",
            target=row,
            before={"status": before},
            after={"status": status, "files": row.files.count()},
        )
    return row


def logged_model_set_tags(*, actor, model: LoggedModel, tags: list[tuple[str, str]]) -> None:
    require_creator(actor, model.creator_id, "logged model")
    if len(tags) > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationError(f"At most {MAX_PARAMS_TAGS_PER_BATCH} tags per call.")
    tags = _check_pairs(tags, MAX_TAG_VALUE, "Tag")
    with transaction.atomic():
        row = _locked(model)
        for key, value in tags.items():
            LoggedModelTag.objects.update_or_create(
                logged_model=row, key=key, defaults={"value": value}
            )
        _touch(row)
        chain.record(
            actor=actor, action="logged_model.tags_set", target=row, after={"tags": sorted(tags)}
        )


def logged_model_delete_tag(*, actor, model: LoggedModel, key: str) -> None:
    """LoggedModelTag.DoesNotExist for a tag the model does not have."""
    require_creator(actor, model.creator_id, "logged model")
    with transaction.atomic():
        row = _locked(model)
        deleted, _ = LoggedModelTag.objects.filter(logged_model=row, key=key).delete()
        if not deleted:
            raise LoggedModelTag.DoesNotExist(f"Logged model {row.pk} has no tag {key[:100]!r}.")
        _touch(row)
        chain.record(actor=actor, action="logged_model.tag_deleted", target=row,
                     before={"tag": key})  # fmt: skip


def logged_model_log_params(*, actor, model: LoggedModel, params: list[tuple[str, str]]) -> None:
    """Parameters are immutable once logged, as a run's are."""
    require_creator(actor, model.creator_id, "logged model")
    params = _check_params(params)
    with transaction.atomic():
        row = _locked(model)
        existing = dict(
            LoggedModelParam.objects.filter(logged_model=row, key__in=params).values_list(
                "key", "value"
            )
        )
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise ValidationError(
                    f"Param {key!r} was already logged with value {existing[key][:100]!r}."
                )
        LoggedModelParam.objects.bulk_create(
            LoggedModelParam(logged_model=row, key=k, value=v)
            for k, v in params.items()
            if k not in existing
        )
        _touch(row)
        chain.record(
            actor=actor,
            action="logged_model.params_logged",
            target=row,
            after={"params": sorted(params)},
        )
