"""Datasets: shared by every model, visible to every signed-in user. What a dataset says about
versions is scoped to the models the caller may view. Their owners (who registered them,
members of their team, superusers) may correct them."""

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from core.rules import DATASET_OWNER, LOGIN
from models_app import selectors, services
from models_app.models import Dataset

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
    PageQuery,
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
    paging: Query[PageQuery] = None,
):
    """Signed-in users. ``versions`` lists (paginated) only versions of models you may view,
    and says nothing, not even how many, about the others."""
    dataset = get_object_or_404(Dataset.objects.select_related("created_by", "team"), pk=dataset_id)
    links = selectors.dataset_links(request.user, dataset)
    versions = paginate(
        request,
        links,
        limit=paging.limit,
        page=paging.page,
        serialize=lambda rows: (
            {"model": link.version.model.name, "number": link.version.number,
             "status": link.version.status, "role": link.role}
            for link in rows
        ),
    )  # fmt: skip
    return _dataset_out(request, dataset) | {"versions": versions}


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
