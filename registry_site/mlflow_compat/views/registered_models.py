"""/api/2.0/mlflow/registered-models/…: models, their tags and aliases.

Every view is signed-in only (LOGIN) and fetches its model through the access helper with the
role the dashboard asks for the same change: an outsider gets RESOURCE_DOES_NOT_EXIST exactly
like a missing model, a viewer lacking the role PERMISSION_DENIED.
"""

from django.http import HttpRequest, JsonResponse

from approvals import services as approvals
from approvals.models import Alias
from core.rules import LOGIN, MODEL_ALIAS, access
from models_app import services
from models_app.access import Role, require, visible_models
from models_app.models import RegisteredModel
from registry_site.mlflow_compat import cache, filters
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.mlflow_compat.protocol import ApiError, Params, endpoint, invalid
from registry_site.mlflow_compat.serializers import (
    MODEL_ROW,
    ModelRow,
    canonical_stage,
    describe_alias_holder,
    describe_model,
    describe_models,
    latest_versions,
)
from registry_site.mlflow_compat.views.common import (
    check_alias,
    check_tag,
    for_model,
    refuse_unsigned,
    version_of,
)

MAX_DESCRIPTION = 20000
MAX_RESULTS = 1000


def _reloaded(model: RegisteredModel) -> RegisteredModel:
    """The model as a change left it in the database (timestamps, owner), to answer with."""
    return RegisteredModel.objects.select_related("owner").get(pk=model.pk)


@endpoint("POST")
@access(LOGIN)
def create(request: HttpRequest) -> JsonResponse:
    """Create a model; the caller becomes its manager. Any signed-in user."""
    params = Params(request)
    name = params.text("name", required=True, max_length=200)
    description = params.text("description", max_length=MAX_DESCRIPTION)
    tags = dict(check_tag(k, v) for k, v in params.tags())
    model = services.model_create(actor=request.user, name=name, description=description, tags=tags)
    return JsonResponse({"registered_model": describe_model(_reloaded(model))})


@endpoint("GET")
@for_model(Role.VIEW)
def get(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """One model. View role."""
    described = cache.answer(model, ("model",), lambda: describe_model(model))
    return JsonResponse({"registered_model": described})


@endpoint("PATCH")
@for_model(Role.MANAGE)
def update(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Change the description (other fields are ignored). Manage role, like the settings page."""
    if "description" in params.data:
        description = params.text("description", max_length=MAX_DESCRIPTION)
        model = services.model_update(actor=request.user, model=model, description=description)
    return JsonResponse({"registered_model": describe_model(_reloaded(model))})


@endpoint("POST")
@for_model(Role.MANAGE)
def rename(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Rename; versions, aliases and history follow. Manage role."""
    new_name = params.text("new_name", required=True, max_length=200)
    model = services.model_update(actor=request.user, model=model, name=new_name)
    return JsonResponse({"registered_model": describe_model(_reloaded(model))})


@endpoint("DELETE")
@for_model(Role.MANAGE)
def delete(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Delete the model with its versions, files and aliases. Manage role."""
    services.model_delete(actor=request.user, model=model, reason="Deleted through the MLflow API.")
    return JsonResponse({})


@endpoint("GET")
@access(LOGIN)
def search(request: HttpRequest) -> JsonResponse:
    """Models the caller may view, filtered, ordered and paged as MLflow asks."""
    params = Params(request)
    max_results = params.integer("max_results", default=100, minimum=1, maximum=MAX_RESULTS)
    try:
        clauses = filters.parse(params.text("filter", max_length=10000))
        q = filters.model_q(clauses)
        order = filters.order_by(
            params.text_list("order_by"),
            filters.MODEL_ORDER,
            default=["name_key"],
            tail=["name_key", "pk"],
        )
        offset = filters.decode_token(params.text("page_token", max_length=200))
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    rows = list(
        visible_models(request.user)
        .filter(q)
        .order_by(*order)
        .annotate(audit_head=cache.AUDIT_HEAD)
        .values_list(*MODEL_ROW, "audit_head")[offset : offset + max_results + 1]
    )
    page = [ModelRow(*r[:-1]) for r in rows[:max_results]]
    body: dict = {}
    if page:
        # Each model's shape is the one registered-models/get answers: from the cache while
        # the model's newest audit event is the one read with it here.
        body["registered_models"] = cache.answers(
            [(r[0], r[-1]) for r in rows[:max_results]],
            ("model",),
            lambda positions: describe_models([page[i] for i in positions]),
        )
    if len(rows) > max_results:
        body["next_page_token"] = filters.encode_token(offset + max_results)
    return JsonResponse(body)


@endpoint("GET", "POST")
@for_model(Role.VIEW)
def get_latest_versions(
    request: HttpRequest, params: Params, model: RegisteredModel
) -> JsonResponse:
    """The newest version in each requested stage (every stage if none). View role."""
    stages = []
    for raw in params.text_list("stages"):
        stage = canonical_stage(raw)
        if stage is None:
            raise invalid(f"Invalid stage {raw[:40]!r}: use None, Staging, Production or Archived.")
        stages.append(stage)
    return JsonResponse({"model_versions": latest_versions(model, stages)})


@endpoint("POST")
@for_model(Role.MANAGE)
def set_tag(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Set a model tag. Manage role (tags are model settings)."""
    key, value = check_tag(
        params.text("key", required=True, max_length=250), params.text("value", max_length=5000)
    )
    mlflow_services.model_tag_set(actor=request.user, model=model, key=key, value=value)
    return JsonResponse({})


@endpoint("DELETE")
@for_model(Role.MANAGE)
def delete_tag(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Delete a model tag (a missing one is fine). Manage role."""
    key, _ = check_tag(params.text("key", required=True, max_length=250))
    mlflow_services.model_tag_delete(actor=request.user, model=model, key=key)
    return JsonResponse({})


# ---------------------------------------------------------------------------------------------
# Aliases: one URL, three methods


@endpoint("GET", "POST", "DELETE")
@for_model(Role.VIEW, rule=MODEL_ALIAS)
def alias(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """GET: the version an alias points at (view role). POST: move an alias (edit role;
    production and staging need the promote role and an approved version). DELETE: remove
    it (the same roles; removing a missing alias is fine)."""
    raw = params.text("alias", required=True, max_length=255)
    if request.method == "GET":
        return _alias_get(model, raw)
    name = check_alias(raw)
    require(request.user, model, Role.PROMOTE if name in Alias.PROTECTED_NAMES else Role.EDIT)
    refuse_unsigned(request, model, name)
    current = Alias.objects.filter(model=model, name=name).select_related("version").first()
    if request.method == "DELETE":
        if current is not None:
            approvals.alias_delete(
                actor=request.user, model=model, name=name, note="Removed through the MLflow API."
            )
        return JsonResponse({})
    version = version_of(model, params.version())
    if current is None or current.version_id != version.pk:  # the same version: nothing to do
        approvals.alias_set(
            actor=request.user, model=model, name=name, version=version,
            note="Set through the MLflow API.",
        )  # fmt: skip
    return JsonResponse({})


def _alias_get(model, raw: str) -> JsonResponse:
    described = cache.answer(
        model, ("alias", raw.lower()), lambda: describe_alias_holder(model, raw)
    )
    if described is None:
        raise ApiError("INVALID_PARAMETER_VALUE", f"Registered model alias {raw} not found.", 400)
    return JsonResponse({"model_version": described})
