"""/api/2.0/mlflow/experiments/…: experiments of the tracking API (see docs/mlflow.md,
"Tracking"). Signed-in only; an experiment the caller may not view is RESOURCE_DOES_NOT_EXIST,
exactly like a missing one."""

from django.http import HttpRequest, JsonResponse

from core.rules import EXPERIMENT_VIEW, LOGIN, access
from models_app.access import Role
from registry_site.mlflow_compat import filters
from registry_site.mlflow_compat.protocol import Params, endpoint, invalid, not_found
from registry_site.mlflow_compat.tracking_serializers import describe_experiment
from registry_site.mlflow_compat.views.tracking_common import for_experiment, pair
from tracking import selectors, services
from tracking.access import get_experiment_by_name_for_user, visible_experiments
from tracking.models import Experiment, ExperimentTag, Lifecycle
from tracking.services.limits import MAX_EXPERIMENT_NAME

MAX_RESULTS = 50000
VIEW_TYPES = {
    "ACTIVE_ONLY": [Lifecycle.ACTIVE],
    "DELETED_ONLY": [Lifecycle.DELETED],
    "ALL": [Lifecycle.ACTIVE, Lifecycle.DELETED],
}


def _answer(experiment: Experiment) -> JsonResponse:
    experiment = selectors.experiments_with_tags(Experiment.objects.filter(pk=experiment.pk)).get()
    return JsonResponse({"experiment": describe_experiment(experiment)})


@endpoint("POST")
@access(LOGIN)
def create(request: HttpRequest) -> JsonResponse:
    """Create an experiment, private to the caller. Any signed-in user. The artifact location
    is always the registry's own (mlflow-artifacts:/<id>): one sent is refused."""
    params = Params(request)
    name = params.text("name", required=True, max_length=MAX_EXPERIMENT_NAME)
    if params.text("artifact_location", max_length=1000):
        raise invalid(
            "Experiments keep their files in the registry (mlflow-artifacts:/<id>); "
            "'artifact_location' cannot be chosen."
        )
    experiment = services.experiment_create(actor=request.user, name=name, tags=params.tags())
    return JsonResponse({"experiment_id": str(experiment.pk)})


@endpoint("GET")
@for_experiment(Role.VIEW)
def get(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """One experiment (deleted ones too, marked so). View role."""
    return _answer(experiment)


@endpoint("GET")
@access(EXPERIMENT_VIEW)
def get_by_name(request: HttpRequest) -> JsonResponse:
    """One experiment by name. View role (RESOURCE_DOES_NOT_EXIST otherwise, which is how
    set_experiment learns to create it)."""
    params = Params(request)
    name = params.text("experiment_name", required=True, max_length=MAX_EXPERIMENT_NAME)
    return _answer(get_experiment_by_name_for_user(request.user, name))


@endpoint("GET", "POST")
@access(LOGIN)
def search(request: HttpRequest) -> JsonResponse:
    """Experiments the caller may view, by lifecycle (view_type), optionally by exact name
    (``name = '…'``), newest first or by name, paged."""
    params = Params(request)
    max_results = params.integer("max_results", default=1000, minimum=1, maximum=MAX_RESULTS)
    view_type = params.text("view_type", max_length=20) or "ACTIVE_ONLY"
    if view_type not in VIEW_TYPES:
        raise invalid(f"Unknown view_type {view_type[:20]!r}: use {', '.join(VIEW_TYPES)}.")
    queryset = visible_experiments(request.user).filter(lifecycle_stage__in=VIEW_TYPES[view_type])
    text = params.text("filter", max_length=1000).strip()
    if text:
        queryset = queryset.filter(name=_name_filter(text))
    order = _order(params.text_list("order_by"))
    try:
        offset = filters.decode_token(params.text("page_token", max_length=200))
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    rows = list(
        selectors.experiments_with_tags(queryset.order_by(*order))[
            offset : offset + max_results + 1
        ]
    )
    body: dict = {}
    if rows:
        body["experiments"] = [describe_experiment(e) for e in rows[:max_results]]
    if len(rows) > max_results:
        body["next_page_token"] = filters.encode_token(offset + max_results)
    return JsonResponse(body)


def _name_filter(text: str) -> str:
    """The one filter supported: ``name = 'exact name'`` (the client's get-by-name fallback)."""
    try:
        clauses = filters.parse(text)
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    if len(clauses) != 1 or clauses[0].key != "name" or clauses[0].op != "=":
        raise invalid(
            f"Unsupported experiment filter {text[:100]!r}: only name = '<name>' is supported."
        )
    return clauses[0].value


ORDER = {
    "name": "name",
    "experiment_id": "pk",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}


def _order(order_by: list[str]) -> list[str]:
    fields = []
    for clause in order_by:
        column, _, direction = clause.strip().partition(" ")
        column = column.removeprefix("attributes.").removeprefix("attribute.")
        if column not in ORDER or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise invalid(
                f"Unsupported order_by {clause[:60]!r}: use {', '.join(ORDER)} with ASC or DESC."
            )
        prefix = "-" if direction.strip().upper() == "DESC" else ""
        fields.append(prefix + ORDER[column])
    return [*fields, "-creation_time", "-pk"] if not fields else [*fields, "pk"]


@endpoint("POST")
@for_experiment(Role.MANAGE)
def update(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """Rename. Manage role."""
    new_name = params.text("new_name", required=True, max_length=MAX_EXPERIMENT_NAME)
    services.experiment_rename(actor=request.user, experiment=experiment, new_name=new_name)
    return JsonResponse({})


@endpoint("POST")
@for_experiment(Role.MANAGE)
def delete(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """Mark deleted (its runs and logged models read as deleted). Manage role."""
    services.experiment_delete(actor=request.user, experiment=experiment)
    return JsonResponse({})


@endpoint("POST")
@for_experiment(Role.MANAGE)
def restore(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    services.experiment_restore(actor=request.user, experiment=experiment)
    return JsonResponse({})


@endpoint("POST")
@for_experiment(Role.EDIT)
def set_tag(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """Set one tag (``key``, ``value``). Edit role; on the Default experiment, superusers."""
    key, value = pair(params)
    services.experiment_set_tag(actor=request.user, experiment=experiment, key=key, value=value)
    return JsonResponse({})


@endpoint("POST")
@for_experiment(Role.EDIT)
def delete_tag(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """Remove one tag (``key``); one the experiment does not have is RESOURCE_DOES_NOT_EXIST,
    as in MLflow. Edit role; on the Default experiment, superusers."""
    key = params.text("key", required=True, max_length=10000)
    try:
        services.experiment_delete_tag(actor=request.user, experiment=experiment, key=key)
    except ExperimentTag.DoesNotExist as e:
        raise not_found(str(e)) from None
    return JsonResponse({})
