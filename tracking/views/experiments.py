"""The experiments list and an experiment's page with its runs."""

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core import keyset
from core.rules import LOGIN, access
from models_app.access import Role
from models_app.sharing import grants_of
from tracking import selectors
from tracking.access import experiment_route, perm
from tracking.models import Experiment, Run

PAGE_SIZE = 50
EXPERIMENT_KEYS = (("id", True),)  # newest first
RUN_KEYS = (("start_time", True), ("id", False))  # the runs' own order, served by its index


def cursor_page(request: HttpRequest, rows: QuerySet, model: type[Model], keys) -> keyset.Page:
    """The page ``?after=`` / ``?before=`` a cursor asks for; the first page otherwise, and for
    a cursor that does not decode."""
    for direction in ("after", "before"):
        cursor = request.GET.get(direction)
        values = keyset.decode(cursor, model, keys) if cursor else None
        if values is not None:
            return keyset.page_after(rows, keys, PAGE_SIZE, **{direction: values})
    return keyset.page_after(rows, keys, PAGE_SIZE)


def crumbs(*extra) -> list:
    return [("Experiments", reverse("tracking:experiment_list") if extra else None), *extra]


@access(LOGIN)
@require_http_methods(["GET", "HEAD"])
def experiment_list(request: HttpRequest) -> HttpResponse:
    """Any signed-in user: the experiments they may view (deleted ones with ?deleted=1)."""
    deleted = request.GET.get("deleted") == "1"
    rows = selectors.experiments_for_list(request.user, deleted=deleted)
    page = cursor_page(request, rows, Experiment, EXPERIMENT_KEYS)
    return render(
        request,
        "tracking/experiment_list.html",
        {"nav_section": "experiments", "breadcrumbs": crumbs(), "page": page, "deleted": deleted},
    )


@experiment_route(Role.VIEW, methods=["GET", "HEAD"])
def experiment_detail(request: HttpRequest, experiment: Experiment) -> HttpResponse:
    """Who may view the experiment (404 otherwise): the runs they may see in it (in
    experiment 0 their own), its tags and who it is shared with."""
    deleted = request.GET.get("deleted") == "1"
    runs = selectors.experiment_runs(request.user, experiment, deleted=deleted)
    page = cursor_page(request, runs, Run, RUN_KEYS)
    columns = selectors.attach_metric_columns(page.rows)
    return render(
        request,
        "tracking/experiment_detail.html",
        {
            "nav_section": "experiments",
            "breadcrumbs": crumbs((experiment.name, None)),
            "experiment": experiment,
            "tags": list(experiment.tags.all()),
            "grants": [] if experiment.is_default else grants_of(experiment, perm_of=perm),
            "can_manage": Role.MANAGE in experiment.user_roles,
            "page": page,
            "metric_columns": columns,
            "deleted": deleted,
        },
    )
