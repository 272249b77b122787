"""Which run, logged model and tracked files a ``runs:``/``models:``/tracking ``mlflow-artifacts:``
source names, as the caller may read them (reads only, before the registration's transaction).

``models:/m-…``: the logged model's files, once it is READY. ``runs:/<run>/<path>``: the run's
files under ``path``; when there are none, the run's logged model named ``path`` (the newest
READY one), which is what the stock client resolves such a URI to. A run or logged model that
does not exist, is deleted, or that the caller may not read answers the same 404.
"""

from dataclasses import dataclass

from django.db.models import Q
from django.http import Http404

from registry_site.mlflow_compat.protocol import invalid
from registry_site.mlflow_compat.sources import FromTracking, Source
from tracking.access import get_logged_model_for_user, get_run_for_user, may_view_item
from tracking.models import Lifecycle, LoggedModel, Run, TrackedFile


@dataclass
class Resolved:
    run: Run | None
    logged_model: LoggedModel | None
    prefix: str  # the files' common folder inside their owner's location ("" for all)
    file_ids: list[int]


def _not_found(source: Source) -> Http404:
    # The same words whether the run or model is missing, deleted or someone else's.
    return Http404(f"Source {source.uri[:200]!r}: no run or logged model there that you may read.")


def _under(owner_filter: Q, prefix: str) -> list[int]:
    rows = TrackedFile.objects.filter(owner_filter).values_list("pk", "path")
    if prefix:
        rows = rows.filter(path__startswith=prefix)
    # Compared here, not in SQL: SQLite's LIKE (behind startswith) ignores case.
    return [
        pk for pk, path in rows if not prefix or path == prefix or path.startswith(prefix + "/")
    ]


def _ready(model: LoggedModel, source: Source) -> None:
    if model.status != LoggedModel.Status.READY:
        raise invalid(
            f"Logged model {model.pk} is {model.status}, not LOGGED_MODEL_READY: its files may "
            "still be uploading. Register it once it is finalized."
        )


def _open(item: Run | LoggedModel, source: Source) -> None:
    if item.lifecycle_stage != Lifecycle.ACTIVE or (
        item.experiment.lifecycle_stage != Lifecycle.ACTIVE
    ):
        raise _not_found(source)


def resolve(user, source: Source, *, run_id: str = "") -> Resolved:
    """The run, logged model and files of a tracking source, as ``user`` may read them.
    ``run_id`` (the request's, when given) must be the run the source comes from."""
    tracked: FromTracking = source.tracked
    try:
        if tracked.model_id:
            model = get_logged_model_for_user(user, tracked.model_id)
            run = model.source_run
            found = _from_model(model, tracked, source)
        else:
            run = get_run_for_user(user, tracked.run_id)
            found = _from_run(user, run, tracked, source)
    except Http404:
        raise _not_found(source) from None
    owner_experiment = (found.logged_model or found.run).experiment_id
    if tracked.experiment_id and tracked.experiment_id != str(owner_experiment):
        raise _not_found(source)
    if run_id and (run is None or run_id != run.pk):
        raise invalid(
            f"run_id {run_id[:40]!r} is not the run of {source.uri[:200]!r}"
            + (f" ({run.pk})." if run is not None else " (it has none).")
        )
    return found


def _from_model(model: LoggedModel, tracked: FromTracking, source: Source) -> Resolved:
    _open(model, source)
    _ready(model, source)
    ids = _under(Q(logged_model=model), tracked.path)
    if not ids:
        raise _not_found(source)
    return Resolved(model.source_run, model, tracked.path, ids)


def _from_run(user, run: Run, tracked: FromTracking, source: Source) -> Resolved:
    _open(run, source)
    ids = _under(Q(run=run), tracked.path)
    if ids:
        return Resolved(run, None, tracked.path, ids)
    if not tracked.path or "/" in tracked.path:
        raise _not_found(source)
    candidates = (
        LoggedModel.objects.filter(
            source_run=run, name=tracked.path, lifecycle_stage=Lifecycle.ACTIVE
        )
        .select_related("experiment", "source_run")
        .order_by("-creation_time", "-pk")
    )
    model = next((m for m in candidates[:20] if may_view_item(user, m)), None)
    if model is None:
        raise _not_found(source)
    _ready(model, source)
    ids = _under(Q(logged_model=model), "")
    if not ids:
        raise _not_found(source)
    return Resolved(run, model, "", ids)
