"""Datasets: shared by every model, visible to every signed-in user. What a dataset says about
versions is scoped to the models the caller may view. Their owners (who registered them,
members of their team, superusers) may correct them."""

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from core import keyset
from core.rules import DATASET_OWNER, LOGIN
from models_app import selectors, services
from models_app.models import Dataset, VersionDataset

from .helpers import MAX_ID, api_url, paginate, requires, team_for
from .idempotency import KeyHeader, idempotent
from .schemas import (
    ERRORS,
    DatasetCreateIn,
    DatasetDetailOut,
    DatasetFilters,
    DatasetOut,
    DatasetPage,
    DatasetPatchIn,
    LinkPageQuery,
)

router = Router(tags=["datasets"])


def _dataset_out(request: HttpRequest, d: Dataset) -> dict:
    return {
        "id": d.pk,
        "name": d.name,
        "uri": d.uri,
        "digest": d.digest,
        "row_count": d.row_count,
        "description": d.description,
        "created_by": d.created_by.get_username(),
        "team": d.team.name if d.team_id else None,
        "created_at": d.created_at,
        "url": api_url(request, "dataset", d.pk),
    }


@router.get("", response={200: DatasetPage, **ERRORS}, url_name="datasets")
@requires(LOGIN)
def list_datasets(request: HttpRequest, filters: Query[DatasetFilters]):
    """Signed-in users. ``q`` searches names and URIs."""
    datasets = Dataset.objects.select_related("created_by", "team").order_by("name")
    if filters.q:
        datasets = datasets.filter(Q(name__icontains=filters.q) | Q(uri__icontains=filters.q))
    return paginate(
        request,
        datasets,
        limit=filters.limit,
        page=filters.page,
        serialize=lambda rows: (_dataset_out(request, d) for d in rows),
    )


@router.post("", response={201: DatasetOut, **ERRORS}, url_name="datasets")
@requires(LOGIN)
@decorate_view(idempotent)
def create_dataset(
    request: HttpRequest, payload: DatasetCreateIn, idempotency_key: str | None = KeyHeader
):
    """Signed-in users. Names are unique."""
    dataset = services.dataset_create(actor=request.user, **payload.model_dump())
    return Status(201, _dataset_out(request, dataset))


@router.get("/{dataset_id}", response={200: DatasetDetailOut, **ERRORS}, url_name="dataset")
@requires(LOGIN)
def get_dataset(
    request: HttpRequest,
    dataset_id: int = Path(..., ge=1, le=MAX_ID),
    paging: Query[LinkPageQuery] = None,
):
    """Signed-in users. ``versions`` lists only versions of models you may view, newest first,
    and says nothing, not even how many, about the others. It pages by cursor (``next``,
    ``previous``) and has no ``count``: a dataset may be linked to 100,000 versions."""
    if paging.page not in (None, 1):
        raise ValidationError(
            {"page": ["A dataset's versions page by cursor: follow the `next` link."]}
        )
    if paging.after and paging.before:
        raise ValidationError({"before": ["Give `after` or `before`, not both."]})
    cursors = {}
    for direction in ("after", "before"):
        cursor = getattr(paging, direction)
        if cursor:
            values = keyset.decode(cursor, VersionDataset, selectors.LINK_KEYS)
            if values is None:
                message = (
                    f"`{direction}` is not a cursor of this list: follow a `next` or "
                    "`previous` link as it is."
                )
                raise ValidationError({direction: [message]})
            cursors[direction] = values
    dataset = get_object_or_404(Dataset.objects.select_related("created_by", "team"), pk=dataset_id)
    page = selectors.dataset_links_page(request.user, dataset, size=paging.limit, **cursors)
    versions = {
        "items": [
            {"model": link.version.model.name, "number": link.version.number,
             "status": link.version.status, "role": link.role}
            for link in page.rows
        ],
        "next": _cursor_url(request, paging.limit, "after", page.next_cursor),
        "previous": _cursor_url(request, paging.limit, "before", page.previous_cursor),
    }  # fmt: skip
    return _dataset_out(request, dataset) | {"versions": versions}


def _cursor_url(request: HttpRequest, limit: int, direction: str, value: str | None) -> str | None:
    """This list's URL for the items ``direction`` ("after", "before") cursor ``value``; None
    without a cursor."""
    if value is None:
        return None
    query = request.GET.copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    query[direction] = value
    query["limit"] = str(limit)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


@router.patch("/{dataset_id}", response={200: DatasetOut, **ERRORS}, url_name="dataset")
@requires(DATASET_OWNER)
def update_dataset(
    request: HttpRequest, payload: DatasetPatchIn, dataset_id: int = Path(..., ge=1, le=MAX_ID)
):
    """The dataset's owner: who registered it, members of its team, superusers (403 for
    others). Only the fields given change. A URI or digest that versions beyond draft were
    reviewed against cannot change (409); an empty one may be filled in."""
    dataset = get_object_or_404(Dataset.objects.select_related("created_by", "team"), pk=dataset_id)
    changes = payload.model_dump(exclude_unset=True)  # null is refused by the schema
    if "team" in changes:
        changes["team"] = team_for(request, changes["team"], current=dataset.team)
    fields = {
        "uri": dataset.uri, "digest": dataset.digest, "description": dataset.description,
        "team": dataset.team,
    } | changes  # fmt: skip
    updated = services.dataset_update(actor=request.user, dataset=dataset, **fields)
    return _dataset_out(request, updated)
