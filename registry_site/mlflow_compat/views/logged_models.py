"""/api/2.0/mlflow/logged-models…: models logged by training runs (``mlflow.<flavor>.log_model``)
before any registration (see docs/mlflow.md, "Tracking"). A logged model is visible as its
experiment's runs are; only its creator (or a superuser) may change it."""

from django.http import HttpRequest, JsonResponse

from core.rules import LOGIN, access
from models_app.access import Role
from registry_site.mlflow_compat import filters
from registry_site.mlflow_compat.protocol import Params, endpoint, invalid, not_found
from registry_site.mlflow_compat.tracking_serializers import describe_logged_model
from registry_site.mlflow_compat.views.tracking_common import (
    for_experiment,
    for_logged_model,
    objects,
    pairs,
)
from tracking import selectors, services
from tracking.access import get_experiment_for_user, get_run_for_user, visible_items_q
from tracking.models import Experiment, Lifecycle, LoggedModel, LoggedModelTag

MAX_SEARCH_RESULTS = 1000


def _answer(model: LoggedModel) -> JsonResponse:
    model = selectors.logged_models_with_data(LoggedModel.objects.filter(pk=model.pk)).get()
    metrics = selectors.logged_model_metrics([model])[model.pk]
    return JsonResponse({"model": describe_logged_model(model, metrics)})


@endpoint("POST")
@for_experiment(Role.EDIT)
def create(request: HttpRequest, params: Params, experiment: Experiment) -> JsonResponse:
    """A PENDING logged model. Edit role on the experiment; with ``source_run_id``, the run's
    creator (a run the caller may not see is RESOURCE_DOES_NOT_EXIST)."""
    run_id = params.text("source_run_id", max_length=40)
    run = get_run_for_user(request.user, run_id, write=True) if run_id else None
    model = services.logged_model_create(
        actor=request.user,
        experiment=experiment,
        name=params.text("name", required=True, max_length=250),
        source_run=run,
        model_type=params.text("model_type", max_length=250),
        params=pairs(params, "params"),
        tags=pairs(params, "tags"),
    )
    return _answer(model)


@endpoint("GET", "PATCH")
@for_logged_model(write=None)
def logged_model(request: HttpRequest, params: Params, model: LoggedModel) -> JsonResponse:
    """GET: the logged model (whoever may see it). PATCH: finalize it, READY or UPLOAD_FAILED
    (its creator)."""
    if request.method == "PATCH":
        status = params.text("status", required=True, max_length=40)
        model = services.logged_model_finalize(actor=request.user, model=model, status=status)
    return _answer(model)


@endpoint("PATCH")
@for_logged_model(write=True)
def set_tags(request: HttpRequest, params: Params, model: LoggedModel) -> JsonResponse:
    services.logged_model_set_tags(actor=request.user, model=model, tags=pairs(params, "tags"))
    return JsonResponse({})


@endpoint("DELETE")
@for_logged_model(write=True)
def delete_tag(request: HttpRequest, params: Params, model: LoggedModel, key: str) -> JsonResponse:
    try:
        services.logged_model_delete_tag(actor=request.user, model=model, key=key)
    except LoggedModelTag.DoesNotExist as e:
        raise not_found(str(e)) from None
    return JsonResponse({})


@endpoint("POST")
@for_logged_model(write=True)
def log_params(request: HttpRequest, params: Params, model: LoggedModel) -> JsonResponse:
    services.logged_model_log_params(
        actor=request.user, model=model, params=pairs(params, "params")
    )
    return JsonResponse({})


@endpoint("POST")
@access(LOGIN)
def search(request: HttpRequest) -> JsonResponse:
    """Logged models of the given experiments (each visible to the caller) that the caller may
    see, newest first. The filter the client sends (``name = '…'``) is supported; others are
    refused."""
    params = Params(request)
    ids = params.text_list("experiment_ids")
    if not ids:
        raise invalid("Name at least one experiment in 'experiment_ids'.")
    experiments = [get_experiment_for_user(request.user, i) for i in dict.fromkeys(ids)]
    if objects(params, "datasets") or objects(params, "order_by"):
        raise invalid("Searching logged models by dataset or ordering them is not supported.")
    max_results = params.integer("max_results", default=100, minimum=1, maximum=MAX_SEARCH_RESULTS)
    queryset = LoggedModel.objects.filter(
        visible_items_q(request.user, experiments), lifecycle_stage=Lifecycle.ACTIVE
    ).exclude(experiment__lifecycle_stage=Lifecycle.DELETED)
    text = params.text("filter", max_length=1000)
    try:
        clauses = filters.parse(text)
        offset = filters.decode_token(params.text("page_token", max_length=200))
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    for clause in clauses:
        key = clause.key.removeprefix("attributes.")
        if clause.kind != "attribute" or clause.op != "=" or key not in ("name", "source_run_id"):
            raise invalid(
                f"Unsupported logged model filter {text[:100]!r}: use name = '<name>' "
                "(and source_run_id = '<run id>'), joined with AND."
            )
        queryset = queryset.filter(**{key: clause.value})
    rows = list(
        selectors.logged_models_with_data(queryset.order_by("-creation_time", "id"))[
            offset : offset + max_results + 1
        ]
    )
    page = rows[:max_results]
    metrics = selectors.logged_model_metrics(page)
    body: dict = {"models": [describe_logged_model(m, metrics[m.pk]) for m in page]}
    if len(rows) > max_results:
        body["next_page_token"] = filters.encode_token(offset + max_results)
    return JsonResponse(body)
