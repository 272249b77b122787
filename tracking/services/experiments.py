"""Experiments: create, rename, delete (hides its runs and logged models), restore, set and
delete tags."""

import time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit import chain
from models_app.access import Role
from tracking.access import require_experiment
from tracking.models import Experiment, ExperimentTag, Lifecycle
from tracking.services.limits import (
    MAX_EXPERIMENT_NAME,
    MAX_EXPERIMENT_TAG_VALUE,
    check_key,
    check_value,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An experiment needs a name."})
    if len(name) > MAX_EXPERIMENT_NAME:
        raise ValidationError(
            {"name": f"Experiment names are at most {MAX_EXPERIMENT_NAME} characters."}
        )
    return name


def _taken(name: str) -> ValidationError:
    # "is taken": the MLflow API answers RESOURCE_ALREADY_EXISTS, as stock MLflow does.
    return ValidationError(
        {"name": ValidationError(f"Experiment name {name!r} is taken.", code="name_taken")}
    )


def experiment_create(*, actor, name: str, tags: list[tuple[str, str]] = ()) -> Experiment:
    """A new experiment, private to ``actor`` (its creator) until shared. Any signed-in user."""
    name = _check_name(name)
    tags = dict(tags)
    for key, value in tags.items():
        check_key(key, "Tag")
        check_value(value, MAX_EXPERIMENT_TAG_VALUE, "Tag")
    with transaction.atomic():
        if Experiment.objects.filter(name=name).exists():
            raise _taken(name)
        stamp = now_ms()
        try:
            with transaction.atomic():
                experiment = Experiment.objects.create(
                    name=name, creator=actor, creation_time=stamp, last_update_time=stamp
                )
        except IntegrityError:
            raise _taken(name) from None
        ExperimentTag.objects.bulk_create(
            ExperimentTag(experiment=experiment, key=k, value=v) for k, v in tags.items()
        )
        chain.record(
            actor=actor,
            action="experiment.created",
            target=experiment,
            after={"name": name, "tags": sorted(tags)},
        )
    return experiment


def _locked(experiment: Experiment) -> Experiment:
    return Experiment.objects.select_for_update().get(pk=experiment.pk)


def experiment_rename(*, actor, experiment: Experiment, new_name: str) -> Experiment:
    """Manage role; experiment 0 keeps its name."""
    require_experiment(actor, experiment, Role.MANAGE)
    new_name = _check_name(new_name)
    if experiment.is_default:
        raise ValidationError("The Default experiment (0) cannot be renamed.")
    with transaction.atomic():
        row = _locked(experiment)
        old = row.name
        if Experiment.objects.filter(name=new_name).exclude(pk=row.pk).exists():
            raise _taken(new_name)
        row.name = new_name
        row.last_update_time = now_ms()
        row.save(update_fields=["name", "last_update_time"])
        chain.record(
            actor=actor,
            action="experiment.renamed",
            target=row,
            before={"name": old},
            after={"name": new_name},
        )
    return row


def _set_lifecycle(*, actor, experiment: Experiment, stage: str, action: str) -> Experiment:
    require_experiment(actor, experiment, Role.MANAGE)
    if experiment.is_default:
        raise ValidationError("The Default experiment (0) cannot be deleted.")
    with transaction.atomic():
        row = _locked(experiment)
        before = row.lifecycle_stage
        if before == stage:
            raise ValidationError(f"Experiment {row.pk} is already {stage}.")
        row.lifecycle_stage = stage
        row.last_update_time = now_ms()
        row.save(update_fields=["lifecycle_stage", "last_update_time"])
        chain.record(
            actor=actor,
            action=action,
            target=row,
            before={"lifecycle_stage": before},
            after={"lifecycle_stage": stage},
        )
    return row


def experiment_delete(*, actor, experiment: Experiment) -> Experiment:
    """Mark deleted: its runs and logged models read as deleted and take no more writes. No
    file is touched (least of all a registered version's). Manage role."""
    return _set_lifecycle(
        actor=actor, experiment=experiment, stage=Lifecycle.DELETED, action="experiment.deleted"
    )


def experiment_restore(*, actor, experiment: Experiment) -> Experiment:
    return _set_lifecycle(
        actor=actor, experiment=experiment, stage=Lifecycle.ACTIVE, action="experiment.restored"
    )


def _tags_writable(actor, experiment: Experiment) -> None:
    """Edit role; the Default experiment (0), which every user may use, only by superusers, so
    that no one user relabels it for all the others."""
    require_experiment(actor, experiment, Role.MANAGE if experiment.is_default else Role.EDIT)


def _locked_active(experiment: Experiment) -> Experiment:
    row = _locked(experiment)
    if row.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Experiment {row.pk} is deleted; restore it first.")
    return row


def experiment_set_tag(*, actor, experiment: Experiment, key: str, value: str) -> None:
    """Set (or overwrite) one tag of an active experiment. Edit role (see _tags_writable);
    MLflow's limits on the key and value."""
    _tags_writable(actor, experiment)
    check_key(key, "Tag")
    check_value(value, MAX_EXPERIMENT_TAG_VALUE, "Tag")
    with transaction.atomic():
        row = _locked_active(experiment)
        _, created = ExperimentTag.objects.update_or_create(
            experiment=row, key=key, defaults={"value": value}
        )
        row.last_update_time = now_ms()
        row.save(update_fields=["last_update_time"])
        chain.record(
            actor=actor,
            action="experiment.tag_set",
            target=row,
            after={"tag": key, "created": created},
        )


def experiment_delete_tag(*, actor, experiment: Experiment, key: str) -> None:
    """Remove one tag of an active experiment (ExperimentTag.DoesNotExist for a tag it does not
    have). Edit role, as for setting it."""
    _tags_writable(actor, experiment)
    with transaction.atomic():
        row = _locked_active(experiment)
        deleted, _ = ExperimentTag.objects.filter(experiment=row, key=key).delete()
        if not deleted:
            raise ExperimentTag.DoesNotExist(f"Experiment {row.pk} has no tag {key[:100]!r}.")
        row.last_update_time = now_ms()
        row.save(update_fields=["last_update_time"])
        chain.record(actor=actor, action="experiment.tag_deleted", target=row, before={"tag": key})
