"""Datasets: shared by every model, visible to every signed-in user. What a dataset says about
versions is scoped to the models the caller may view."""

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from core.rules import LOGIN
from models_app import services
from models_app.access import visible_models
from models_app.models import Dataset, VersionDataset

from .helpers import MAX_ID, api_url, paginate, requires
from .idempotency import KeyHeader, idempotent
from .schemas import (
    ERRORS,
    DatasetCreateIn,
    DatasetDetailOut,
    DatasetFilters,
    DatasetOut,
    DatasetPage,
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
        "created_at": d.created_at,
        "url": api_url(request, "dataset", d.pk),
    }


@router.get("", response={200: DatasetPage, **ERRORS}, url_name="datasets")
@requires(LOGIN)
def list_datasets(request: HttpRequest, filters: Query[DatasetFilters]):
    """Signed-in users. ``q`` searches names and URIs."""
    datasets = Dataset.objects.select_related("created_by").order_by("name")
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
    dataset = get_object_or_404(Dataset.objects.select_related("created_by"), pk=dataset_id)
    links = (
        VersionDataset.objects.filter(
            dataset=dataset, version__model__in=visible_models(request.user)
        )
        .select_related("version__model")
        .order_by("version__model__name_key", "-version__number", "role")
    )
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
