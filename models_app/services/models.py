"""Registered models: create, update, metric directions, delete."""

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from guardian.shortcuts import assign_perm

from audit import chain
from models_app import storage
from models_app.access import Role, require
from models_app.models import (
    Artifact,
    MetricSpec,
    ModelTag,
    RegisteredModel,
    ReservedName,
    VersionParent,
)
from models_app.names import NameReserved, name_key, validate_model_name

MODEL_FIELDS = ("name", "description", "task", "visibility", "team")


def _model_state(model: RegisteredModel) -> dict:
    return {
        "name": model.name,
        "description": model.description,
        "task": model.task,
        "visibility": model.visibility,
        "team": model.team.name if model.team_id else None,
        "tags": dict(model.tags.values_list("key", "value")) if model.pk else {},
    }


def _set_name(model: RegisteredModel, name: str) -> None:
    display = validate_model_name(name)
    model.name = display
    model.name_key = name_key(display)
    model.slug = model.name_key


def _rename_links(model: RegisteredModel) -> None:
    """Lineage links keep their parent's model name for when it is deleted: keep it current,
    also for the model's own deleted versions."""
    VersionParent.objects.filter(
        Q(parent__model=model)
        | Q(parent__isnull=True, parent_in_child_model=True, child__model=model)
    ).update(parent_model_name=model.name)


def _name_taken(name: str) -> ValidationError:
    message = f"The name {name!r} is taken (or too close to an existing name)."
    return ValidationError({"name": [ValidationError(message, code="name_taken")]})


def _refuse_reserved(model: RegisteredModel, *, own_allowed: bool) -> None:
    """Refuse a name that is reserved (for another model, if ``own_allowed``: a model may
    take back a name it had). Called after the model's row is written in the transaction: a
    delete or rename that reserves the name at the same moment holds the unique key until it
    commits, so this read sees its reservation."""
    reserved = ReservedName.objects.filter(name_key=model.name_key)
    if own_allowed:
        reserved = reserved.exclude(why=ReservedName.Why.RENAMED, model_id=model.pk)
    reserved = reserved.first()
    if reserved is not None:
        raise NameReserved(model.name, reserved.why)


def _reserve(*, actor, model: RegisteredModel, name: str, key: str, why: str) -> None:
    ReservedName.objects.update_or_create(
        name_key=key,
        defaults={
            "name": name,
            "why": why,
            "model_id": model.pk,
            "reserved_by": actor if actor is not None and actor.is_authenticated else None,
        },
    )


def model_create(
    *,
    actor,
    name: str,
    description: str = "",
    task: str = RegisteredModel.Task.CLASSIFICATION,
    visibility: str = RegisteredModel.Visibility.PRIVATE,
    team: Group | None = None,
    tags: dict[str, str] | None = None,
    metric_directions: dict[str, bool] | None = None,
) -> RegisteredModel:
    """Create a model; its creator becomes its manager. A clashing name is a ValidationError."""
    model = RegisteredModel(
        description=description, task=task, visibility=visibility, team=team, owner=actor
    )
    _set_name(model, name)
    model.full_clean(exclude=["name_key", "slug"])
    if RegisteredModel.objects.filter(name_key=model.name_key).exists():
        raise _name_taken(model.name)
    try:
        with transaction.atomic():
            model.save()
            _refuse_reserved(model, own_allowed=False)
            for key, value in (tags or {}).items():
                ModelTag.objects.create(model=model, key=key, value=value)
            for metric, higher in (metric_directions or {}).items():
                MetricSpec.objects.create(model=model, name=metric, higher_is_better=higher)
            for role in Role.MANAGE.implied:
                assign_perm(role.perm, actor, model)
            chain.record(
                actor=actor,
                action="model.created",
                target=model,
                model=model,
                after=_model_state(model),
            )
    except IntegrityError:
        # Two people creating the same name at once: the unique key decides, the loser is told.
        raise _name_taken(model.name) from None
    return model


def model_update(*, actor, model: RegisteredModel, **changes) -> RegisteredModel:
    """Change name, description, task, visibility, team and/or tags (``tags`` replaces all)."""
    require(actor, model, Role.MANAGE)
    unknown = set(changes) - set(MODEL_FIELDS) - {"tags"}
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
            before = _model_state(model)
            tags = changes.pop("tags", None)
            old_name, old_key = model.name, model.name_key
            if "name" in changes and changes["name"] != model.name:
                _set_name(model, changes.pop("name"))
                if (
                    RegisteredModel.objects.filter(name_key=model.name_key)
                    .exclude(pk=model.pk)
                    .exists()
                ):
                    raise _name_taken(model.name)
            changes.pop("name", None)
            for field, value in changes.items():
                setattr(model, field, value)
            model.full_clean(exclude=["name_key", "slug"])
            after = _model_state(model) | ({"tags": dict(tags)} if tags is not None else {})
            if after == before:
                # Nothing to write: saving would still move updated_at, an answer of the MLflow
                # API that no audit event would mark (registry_site/mlflow_compat/cache.py).
                return model
            model.save()
            if after["name"] != before["name"]:
                _rename_links(model)
            if model.name_key != old_key:
                # The old name stays reserved (for this model only); taking back one of its
                # own former names ends that reservation.
                _refuse_reserved(model, own_allowed=True)
                ReservedName.objects.filter(name_key=model.name_key, model_id=model.pk).delete()
                _reserve(
                    actor=actor,
                    model=model,
                    name=old_name,
                    key=old_key,
                    why=ReservedName.Why.RENAMED,
                )
            if tags is not None:
                model.tags.all().delete()
                ModelTag.objects.bulk_create(
                    ModelTag(model=model, key=k, value=v) for k, v in tags.items()
                )
            chain.record(
                actor=actor,
                action="model.updated",
                target=model,
                model=model,
                before={k: v for k, v in before.items() if before[k] != after[k]},
                after={k: v for k, v in after.items() if before[k] != after[k]},
            )
    except IntegrityError:
        raise _name_taken(model.name) from None
    return model


def metric_direction_set(
    *, actor, model: RegisteredModel, metric: str, higher_is_better: bool
) -> None:
    require(actor, model, Role.MANAGE)
    with transaction.atomic():
        spec, _ = MetricSpec.objects.update_or_create(
            model=model, name=metric, defaults={"higher_is_better": higher_is_better}
        )
        chain.record(
            actor=actor,
            action="model.metric_direction_set",
            target=model,
            model=model,
            after={"metric": metric, "higher_is_better": higher_is_better},
        )


def model_delete(*, actor, model: RegisteredModel, reason: str = "") -> None:
    """Delete a model, its versions and files, and every grant on it. Its name stays reserved
    (models_app.models.ReservedName) until an administrator releases it."""
    require(actor, model, Role.MANAGE)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        keys = list(
            Artifact.objects.filter(version__model=model).values_list("storage_key", flat=True)
        )
        state = _model_state(model) | {"versions": model.versions.count()}
        chain.record(
            actor=actor,
            action="model.deleted",
            target=model,
            model=model,
            before=state,
            reason=reason,
        )
        _reserve(
            actor=actor,
            model=model,
            name=model.name,
            key=model.name_key,
            why=ReservedName.Why.DELETED,
        )
        # Links from other models' versions stay, without the key (VersionParent.parent).
        VersionParent.objects.filter(child__model=model).delete()
        model.delete()
        storage.release_on_commit(keys)


def name_release(*, actor, reserved: ReservedName) -> None:
    """Release a reserved name, so that a new model may take it. Superusers only: whatever
    still resolves the name (a deployment's ``name@alias``) will reach the new model."""
    if not (actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only administrators may release a reserved name.")
    with transaction.atomic():
        reserved = ReservedName.objects.select_for_update().filter(pk=reserved.pk).first()
        if reserved is None:
            return
        chain.record(
            actor=actor,
            action="name.released",
            target=reserved,
            before={
                "name": reserved.name,
                "why": reserved.why,
                "model_id": reserved.model_id,
                "reserved_at": reserved.reserved_at.isoformat(),
            },
        )
        reserved.delete()
