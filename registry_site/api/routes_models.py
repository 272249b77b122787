"""Registered models: list (with the dashboard's filters), create, read, update, delete."""

from django.http import HttpRequest
from ninja import Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from core.rules import LOGIN, MODEL_MANAGE, MODEL_VIEW
from models_app import selectors, services
from models_app.access import Role

from . import present
from .helpers import model_for, paginate, requires, team_for
from .idempotency import KeyHeader, idempotent
from .schemas import ERRORS, ModelCreateIn, ModelDetailOut, ModelFilters, ModelPage, ModelPatchIn

router = Router(tags=["models"])
FILTERS = {"q", "team", "owner", "framework", "task", "tag", "status", "sort"}


@router.get("", response={200: ModelPage, **ERRORS}, url_name="models")
@requires(LOGIN)
def list_models(request: HttpRequest, filters: Query[ModelFilters]):
    """Models you may view, filtered and sorted like the dashboard's list."""
    models = selectors.model_list(
        request.user,
        **filters.model_dump(include=FILTERS),
    ).prefetch_related("tags")
    return paginate(
        request,
        models,
        limit=filters.limit,
        page=filters.page,
        serialize=lambda rows: (present.model_summary(request, m) for m in rows),
    )


@router.post("", response={201: ModelDetailOut, **ERRORS}, url_name="models")
@requires(LOGIN)
@decorate_view(idempotent)
def create_model(
    request: HttpRequest, payload: ModelCreateIn, idempotency_key: str | None = KeyHeader
):
    """Any signed-in user may create a model; they become its manager."""
    model = services.model_create(
        actor=request.user,
        name=payload.name,
        description=payload.description,
        task=payload.task,
        visibility=payload.visibility,
        team=team_for(request, payload.team),
        tags=payload.tags,
        metric_directions=payload.metric_directions,
    )
    model.user_roles = set(Role)
    return Status(201, present.model_detail(request, model))


@router.get("/{name}", response={200: ModelDetailOut, **ERRORS}, url_name="model")
@requires(MODEL_VIEW)
def get_model(request: HttpRequest, name: str):
    """View role. ``name`` is the model's name or slug."""
    return present.model_detail(request, model_for(request))


@router.patch("/{name}", response={200: ModelDetailOut, **ERRORS}, url_name="model")
@requires(MODEL_MANAGE)
def update_model(request: HttpRequest, name: str, payload: ModelPatchIn):
    """Manage role. Only the fields given change; ``tags`` replaces all tags."""
    model = model_for(request)
    changes = payload.model_dump(exclude_unset=True)  # null is refused by the schema
    if "team" in changes:
        changes["team"] = team_for(request, changes["team"], current=model.team)
    updated = services.model_update(actor=request.user, model=model, **changes)
    updated.user_roles = model.user_roles
    return present.model_detail(request, updated)


@router.delete("/{name}", response={204: None, **ERRORS}, url_name="model")
@requires(MODEL_MANAGE)
def delete_model(request: HttpRequest, name: str, reason: str = Query("", max_length=1000)):
    """Manage role. Deletes the model with its versions and files."""
    model = model_for(request)
    services.model_delete(actor=request.user, model=model, reason=reason)
    return Status(204, None)
