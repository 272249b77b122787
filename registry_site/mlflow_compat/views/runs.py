"""/api/2.0/mlflow/runs/… and metrics/get-history: runs and what training scripts log to them
(see docs/mlflow.md, "Tracking"). A run is visible to whoever may view its experiment (in
experiment 0, to its creator only); only its creator (or a superuser) may write to it. A run
the caller may not see is RESOURCE_DOES_NOT_EXIST, exactly like a missing one."""

from django.db.models import Q
from django.http import HttpRequest, JsonResponse

from core.rules import LOGIN, access
from models_app.access import Role
from registry_site.mlflow_compat import filters
from registry_site.mlflow_compat.protocol import Params, endpoint, invalid, not_found
from registry_site.mlflow_compat.tracking_serializers import (
    describe_metric,
    describe_run,
    describe_run_info,
)
from registry_site.mlflow_compat.views.tracking_common import (
    for_experiment,
    for_run,
    integer,
    metric_in,
    objects,
    pair,
    pairs,
)
from tracking import selectors, services
from tracking.access import get_experiment_for_user, visible_items_q
from tracking.models import Experiment, Lifecycle, Run, RunTag
from tracking.services import DatasetIn
from tracking.services.limits import MAX_RUN_NAME

MAX_SEARCH_RESULTS = 1000
MAX_HISTORY = 25000
VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}


def _answer_run(run: Run) -> JsonResponse:
    return JsonResponse({"run": describe_run(selectors.run_with_data(run))})


@endpoint("POST")
@for_experiment(Role.EDIT)
def create(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """Start a run in the experiment. Edit role (every user may use experiment 0). The run's
    creator is the caller; ``user_id`` in the body is ignored."""
    start_time = params.data.get("start_time")
    run = services.run_create(
        actor=request.user,
        experiment=experiment,
        name=params.text("run_name", max_length=MAX_RUN_NAME),
        start_time=None if start_time in (None, "") else integer(start_time, "start_time"),
        tags=params.tags(),
    )
    return _answer_run(run)


@endpoint("GET")
@for_run(write=False)
def get(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """A run with its latest metric values, params, tags, inputs and outputs."""
    return _answer_run(run)


@endpoint("POST")
@for_run(write=True)
def update(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """Status, end time, name. The run's creator."""
    end_time = params.data.get("end_time")
    run = services.run_update(
        actor=request.user,
        run=run,
        status=params.text("status", max_length=20),
        end_time=integer(end_time, "end_time") if end_time not in (None, "") else None,
        name=params.text("run_name", max_length=MAX_RUN_NAME),
    )
    return JsonResponse({"run_info": describe_run_info(run)})


@endpoint("POST")
@for_run(write=True)
def delete(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    services.run_delete(actor=request.user, run=run)
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def restore(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    services.run_restore(actor=request.user, run=run)
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def log_batch(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """Metrics, params and tags at once, all or nothing (MLflow's limits: 1000 metrics, 100
    params, 100 tags). The run's creator."""
    metrics = [metric_in(m, f"metrics[{i}]") for i, m in enumerate(objects(params, "metrics"))]
    services.run_log_batch(
        actor=request.user,
        run=run,
        metrics=metrics,
        params=pairs(params, "params"),
        tags=pairs(params, "tags"),
    )
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def log_metric(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    services.run_log_batch(actor=request.user, run=run, metrics=[metric_in(params.data, "metric")])
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def log_parameter(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    services.run_log_batch(actor=request.user, run=run, params=[pair(params)])
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def set_tag(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    services.run_log_batch(actor=request.user, run=run, tags=[pair(params)])
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def delete_tag(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    key = params.text("key", required=True, max_length=250)
    try:
        services.run_delete_tag(actor=request.user, run=run, key=key)
    except RunTag.DoesNotExist as e:
        raise not_found(str(e)) from None
    return JsonResponse({})


def _dataset(row, where: str) -> DatasetIn:
    if not isinstance(row, dict) or not isinstance(row.get("dataset"), dict):
        raise invalid(f"'{where}' must be an object with a 'dataset'.")
    dataset = row["dataset"]
    fields = {}
    for name in ("name", "digest", "source_type", "source", "schema", "profile"):
        value = dataset.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise invalid(f"'{where}.dataset.{name}' must be a string.")
        fields[name] = value
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("value"), str)
        for t in tags
    ):
        raise invalid(f"'{where}.tags' must be a list of {{key, value}} strings.")
    return DatasetIn(**fields, tags=tuple((t["key"], t["value"]) for t in tags))


@endpoint("POST")
@for_run(write=True)
def log_inputs(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """Datasets the run used, each with its tags (``mlflow.data.context``: training, …)."""
    datasets = [_dataset(d, f"datasets[{i}]") for i, d in enumerate(objects(params, "datasets"))]
    if objects(params, "models"):
        raise invalid("Logging models as inputs of a run is not supported by this registry.")
    services.run_log_inputs(actor=request.user, run=run, datasets=datasets)
    return JsonResponse({})


@endpoint("POST")
@for_run(write=True)
def log_outputs(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """Logged models the run produced, each at a step."""
    models = []
    for i, row in enumerate(objects(params, "models")):
        if not isinstance(row, dict) or not isinstance(row.get("model_id"), str):
            raise invalid(f"'models[{i}]' must be an object with a string 'model_id'.")
        models.append((row["model_id"], integer(row.get("step"), f"models[{i}].step", default=0)))
    services.run_log_outputs(actor=request.user, run=run, models=models)
    return JsonResponse({})


@endpoint("GET")
@for_run(write=False)
def metric_history(request: HttpRequest, params: Params, run: Run) -> JsonResponse:
    """Every value of one metric of the run, by step and time."""
    key = params.text("metric_key", required=True, max_length=250)
    limit = params.integer("max_results", default=MAX_HISTORY, minimum=1, maximum=MAX_HISTORY)
    if params.text("page_token", max_length=200):
        raise invalid("Metric history is answered in one page of up to 25,000 values.")
    rows = selectors.metric_history(run, key, limit=limit)
    body = {"metrics": [describe_metric(m, with_model=True) for m in rows]} if rows else {}
    return JsonResponse(body)


@endpoint("POST")
@access(LOGIN)
def search(request: HttpRequest) -> JsonResponse:
    """Runs of the given experiments (each must be visible to the caller) that the caller may
    view, newest first; filters: none, or ``attributes.run_name = '…'`` / ``tags.k = '…'``."""
    params = Params(request)
    ids = params.text_list("experiment_ids")
    if not ids:
        raise invalid("Name at least one experiment in 'experiment_ids'.")
    experiments = [get_experiment_for_user(request.user, i) for i in dict.fromkeys(ids)]
    max_results = params.integer("max_results", default=1000, minimum=1, maximum=MAX_SEARCH_RESULTS)
    view_type = params.text("run_view_type", max_length=20) or "ACTIVE_ONLY"
    if view_type not in VIEW_TYPES:
        raise invalid(f"Unknown run_view_type {view_type[:20]!r}.")
    queryset = Run.objects.filter(visible_items_q(request.user, experiments))
    deleted = [e.pk for e in experiments if e.lifecycle_stage != Lifecycle.ACTIVE]
    if view_type == "ACTIVE_ONLY":
        queryset = queryset.filter(lifecycle_stage=Lifecycle.ACTIVE).exclude(experiment__in=deleted)
    elif view_type == "DELETED_ONLY":
        queryset = queryset.filter(Q(lifecycle_stage=Lifecycle.DELETED) | Q(experiment__in=deleted))
    queryset = _filtered(queryset, params.text("filter", max_length=10000))
    if params.text_list("order_by"):
        raise invalid("Runs are answered newest first; 'order_by' is not supported.")
    try:
        offset = filters.decode_token(params.text("page_token", max_length=200))
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    rows = list(
        selectors.runs_with_data(queryset.order_by("-start_time", "id"))[
            offset : offset + max_results + 1
        ]
    )
    body: dict = {}
    if rows:
        body["runs"] = [describe_run(r) for r in rows[:max_results]]
    if len(rows) > max_results:
        body["next_page_token"] = filters.encode_token(offset + max_results)
    return JsonResponse(body)


def _filtered(queryset, text: str):
    try:
        clauses = filters.parse(text)
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    for clause in clauses:
        if clause.op != "=" or not isinstance(clause.value, str):
            raise invalid(_unsupported(text))
        if clause.kind == "tag":
            queryset = queryset.filter(tags__key=clause.key, tags__value=clause.value)
        elif clause.key.removeprefix("attributes.") in ("run_name", "runname"):
            queryset = queryset.filter(name=clause.value)
        elif clause.key.removeprefix("attributes.") in ("run_id", "run_uuid"):
            queryset = queryset.filter(pk=clause.value)
        elif clause.key.removeprefix("attributes.") == "status":
            queryset = queryset.filter(status=clause.value)
        else:
            raise invalid(_unsupported(text))
    return queryset


def _unsupported(text: str) -> str:
    return (
        f"Unsupported run filter {text[:100]!r}: use = on attributes.run_name, "
        "attributes.run_id, attributes.status or tags.<key>, joined with AND."
    )
