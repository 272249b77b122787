"""Reads of the catalogue that more than one interface needs (the dashboard, the JSON API, the
MLflow API): each answers only what the user may see."""

import posixpath

from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.http import FileResponse, HttpResponse, HttpResponseRedirect

from core import keyset
from models_app import storage, summary
from models_app.access import visible_models
from models_app.models import (
    Artifact,
    Dataset,
    RegisteredModel,
    VersionDataset,
    VersionParent,
)

# Sorts of the model list: (label, keys). Keys are (column, descending), the last one unique,
# so each sort is a total order that keyset pagination can seek in (core.keyset); each has an
# index (RegisteredModel.Meta.indexes).
MODEL_SORTS = {
    "name": ("Name", [("name_key", False)]),
    "-updated_at": ("Recently updated", [("updated_at", True), ("name_key", False)]),
    "-created_at": ("Newest", [("created_at", True), ("name_key", False)]),
    "-latest": ("Latest version", [("latest_number", True), ("name_key", False)]),
}


def model_list(
    user,
    *,
    q: str = "",
    team: str = "",
    owner: str = "",
    framework: str = "",
    task: str = "",
    tag: str = "",
    status: str = "",
    sort: str = "name",
) -> QuerySet[RegisteredModel]:
    """The models ``user`` may view, filtered, with their summary (latest version, counts: the
    model's own columns), sorted by one of MODEL_SORTS. ``tag`` is "key" or "key=value";
    ``framework`` matches any version's, ``status`` means "has a version in this status".
    Values must be valid."""
    models = visible_models(user)
    if q:
        models = models.search(q)
    if team:
        models = models.filter(team__name=team)
    if owner:
        models = models.filter(owner__username=owner)
    if framework:
        models = models.with_framework(framework)
    if task:
        models = models.filter(task=task)
    if tag:
        key, has_value, value = tag.partition("=")
        models = models.tagged(key.strip(), value.strip() if has_value else None)
    if status:
        models = models.filter(**{f"{summary.STATUS_COUNTS[status]}__gt": 0})
    return models.with_summary().order_by(*keyset.ordering(MODEL_SORTS[sort][1]))


def deleted_parent_named(user):
    """For annotating lineage links: may ``user`` read the name and number a link kept of
    its deleted parent? When it was a version of the child's own model (whoever sees the child
    sees that model), or for a superuser; otherwise it is "a deleted version"."""
    return Value(True) if user.is_superuser else F("parent_in_child_model")


def version_links(user, side: str) -> QuerySet[VersionParent]:
    """Lineage links, oldest first, with the version on ``side`` ("parent" or "child") and its
    model, and ``is_visible``: may ``user`` view that model? Pages and APIs show a link the
    user may not follow as a hidden version, never by name.

    A parent may have been deleted (``parent`` is None, ``is_visible`` False); ``name_known``
    says whether ``user`` may still read the name and number the link kept
    (deleted_parent_named)."""
    visible = visible_models(user).filter(pk=OuterRef(f"{side}__model_id"))
    return (
        VersionParent.objects.select_related(f"{side}__model")
        .annotate(is_visible=Exists(visible), name_known=deleted_parent_named(user))
        .order_by("pk")
    )


def link_out(link: VersionParent) -> dict:
    """A parent link (from version_links(user, "parent")) as the APIs show it: the parent's
    model and number, ``{"hidden": true}`` for a model the user may not view, or
    ``{"deleted": true}`` (with model and number when ``name_known``)."""
    if link.is_visible:
        return {"model": link.parent.model.name, "version": link.parent.number}
    if link.parent_id is not None:
        return {"hidden": True}
    if link.name_known:
        return {"deleted": True, "model": link.parent_model_name, "version": link.parent_number}
    return {"deleted": True}


def file_download(artifact: Artifact) -> HttpResponse:
    """One stored file as a download, for a caller who may view its version: always an
    attachment of type application/octet-stream, never rendered; on S3 a redirect to a
    short-lived presigned URL instead of streaming through the registry."""
    filename = posixpath.basename(artifact.path)
    url = storage.presigned_url(artifact.storage_key, filename=filename)
    if url is not None:
        response = HttpResponseRedirect(url)
    else:
        response = FileResponse(
            storage.open_stored(artifact.storage_key),
            as_attachment=True,
            filename=filename,
            content_type="application/octet-stream",
        )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# A dataset's links in the order of their indexes (…, -version, role): newest version first.
LINK_KEYS = (("version_id", True), ("role", False))


def dataset_links(user, dataset: Dataset) -> QuerySet[VersionDataset]:
    """The dataset's links to versions of models ``user`` may view, newest version first, with
    each version's model and creator. Ordered and filtered by the link table's own columns
    (each link keeps its version's model). For a user other than a superuser, reads the ids
    of the models they may view first (one query)."""
    return _links_in(dataset, _model_ids(user))


def _model_ids(user) -> list[int] | None:
    """The ids of the models ``user`` may view; None for a superuser (every model)."""
    if user.is_superuser:
        return None
    return list(visible_models(user).order_by().values_list("pk", flat=True))


def _links_in(dataset: Dataset, model_ids: list[int] | None) -> QuerySet[VersionDataset]:
    """The dataset's links (in these models). The dataset and the ids are written into the
    statement (``__among``, core/lookups.py), not passed as parameters: a statement prepared
    with them as parameters (settings: server-side binding) gets a generic plan from its sixth
    run on, which cannot know that one model holds all of a dataset's 100,000 links, and
    walked them (0.4-0.6 s a page); with them written in, the plan reads the newest links
    from the link index and stops at the page (0.2 ms). As parameters, 700 ids in
    ``IN (%s, …)`` also cost 25 ms to bind and plan."""
    links = VersionDataset.objects.filter(dataset_id__among=[dataset.pk])
    if model_ids is not None:
        links = links.filter(model_id__among=model_ids)
    return links.select_related("version__model", "version__created_by").order_by(
        "-version_id", "role"
    )


def dataset_links_page(
    user, dataset: Dataset, *, size: int, after: list | None = None, before: list | None = None
) -> keyset.Page:
    """One page of dataset_links(user, dataset): the ``size`` links after (or before) a
    cursor's values (keyset.decode with LINK_KEYS), the first ones without either. An index
    seek, as fast deep as on top, and no count: a dataset may be linked to 100,000 versions.

    Two queries after the ids of the models the user may view (none for a superuser): the
    page's links alone, from the link index, then those links with their versions (joined
    in the first, PostgreSQL walks the versions' key from the newest down to the page)."""
    links = dataset_links(user, dataset)
    page = keyset.page_after(
        links.select_related(None), LINK_KEYS, size, after=after, before=before
    )
    if page.rows:
        with_versions = VersionDataset.objects.select_related(
            "version__model", "version__created_by"
        ).order_by()  # (by key: not joining the datasets for the model's ordering)
        loaded = with_versions.in_bulk([link.pk for link in page.rows])
        page.rows = [loaded[link.pk] for link in page.rows]
    return page
