"""Registered models: create, update, metric directions, delete."""

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from guardian.shortcuts import assign_perm

from audit import chain
from core.errors import Conflict
from models_app import storage
from models_app.access import Role, require
from models_app.models import (
    Artifact,
    MetricSpec,
    ModelTag,
    RegisteredModel,
    VersionParent,
)
from models_app.names import name_key, validate_model_name

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


def _name_taken(name: str) -> ValidationError:
    message = f"The name {name!r} is taken (or too close to an existing name)."
    return ValidationError({"name": [ValidationError(message, code="name_taken")]})


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
    """Delete a model, its versions and files, and every grant on it (a new model with the
    same name starts with none: they go with it, by their foreign key)."""
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
        try:
            VersionParent.objects.filter(child__model=model).delete()
            model.delete()
        except ProtectedError:
            raise Conflict(
                f"Versions of {model.name} are parents of other models' versions; "
                "delete or re-link those first."
            ) from None
        transaction.on_commit(lambda: storage.delete_quietly(keys))
