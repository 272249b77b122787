"""/api/2.0/mlflow/model-versions/…: registering, reading and moving versions.

A version registered through MLflow starts as a draft, like one registered on the dashboard:
its description and tags can change until it is submitted for review, then they are frozen.
Stages map onto the registry's aliases and approval states (docs/mlflow.md): Production and
Staging are the protected aliases (promote role, approved versions only), Archived is the
archived state (manage role), None removes the protected aliases.
"""

from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse

from approvals import services as approvals
from approvals.models import Alias
from core.errors import Conflict
from core.rules import LOGIN, MODEL_ALIAS, access
from models_app.access import Role, get_model_by_name_for_user, visible_models
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion, RegisteredModel
from registry_site.mlflow_compat import cache, filters, tracked_sources
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.mlflow_compat.protocol import Params, endpoint, invalid
from registry_site.mlflow_compat.serializers import (
    SOURCE_TAG,
    VERIFIED_TAG,
    artifact_root,
    canonical_stage,
    describe_created,
    describe_version,
    describe_version_number,
    describe_versions,
    versions,
    with_source,
)
from registry_site.mlflow_compat.sources import EXTERNAL_SCHEMES, MAX_SOURCE_LENGTH, parse_source
from registry_site.mlflow_compat.views.common import (
    check_tag,
    for_model,
    refuse_unsigned,
    version_of,
)
from tracking import resume

MAX_DESCRIPTION = 20000
MAX_RESULTS = 200000  # what stock MLflow accepts
PAGE_LIMIT = 10000  # the client's default; larger requests get this many and a page token


def _answer(version: ModelVersion) -> JsonResponse:
    return JsonResponse({"model_version": describe_version(version)})


@endpoint("POST")
@for_model(Role.EDIT)
def create(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Register a draft version. Edit role. The source is files staged through the artifact
    proxy (they become the version's files), the caller's own uploads elsewhere in the proxy
    (superusers: anyone's; shared by reference, the uploads stay) or an external object-store
    URI (recorded, unverified, no files)."""
    source = parse_source(
        params.text("source", required=True, max_length=MAX_SOURCE_LENGTH),
        host=request.get_host(),
    )
    run_id = params.text("run_id", max_length=500)
    description = params.text("description", max_length=MAX_DESCRIPTION)
    tags = dict(check_tag(k, v) for k, v in params.tags())
    if source.tracked is not None:
        return _create_from_tracking(request, model, source, run_id, description, tags)
    prefix = upload = None
    if source.upload:
        upload = source.upload  # the caller's own uploads (version_register checks)
    elif not source.external:
        uploaded_for = get_model_by_name_for_user(
            request.user, source.location.model_ref, Role.EDIT
        )
        if uploaded_for.pk != model.pk:
            raise invalid(
                f"The files under {source.uri} were uploaded for model {uploaded_for.name}, not "
                f"{model.name}. Upload them under registry/{model.slug}/<upload id>/."
            )
        prefix = source.location.upload
    tags[SOURCE_TAG] = source.uri
    if source.external:
        tags[VERIFIED_TAG] = "false"
    metadata = parse_metadata({"description": description, "source_run": run_id, "tags": tags})
    version = mlflow_services.version_register(
        actor=request.user,
        model=model,
        metadata=metadata,
        staged_prefix=prefix,
        upload_prefix=upload,
    )
    return JsonResponse({"model_version": describe_created(version, metadata.tags)})


def _create_from_tracking(
    request: HttpRequest,
    model: RegisteredModel,
    source,
    run_id: str,
    description: str,
    tags: dict[str, str],
) -> JsonResponse:
    """Register a run's or logged model's files (adopted by reference), the metadata the
    request leaves empty taken from the run (tracking.resume)."""
    found = tracked_sources.resolve(request.user, source, run_id=run_id)
    run = found.run
    document = {"description": description, "tags": {**tags, SOURCE_TAG: source.uri}}
    if run is not None:
        document = resume.fill(document, resume.resume_of(run, found.logged_model))
    elif found.logged_model is not None:
        document["params"] = {p.key: p.value for p in found.logged_model.params.all()}
    metadata = parse_metadata(document)
    version = mlflow_services.version_register_from_tracking(
        actor=request.user,
        model=model,
        metadata=metadata,
        file_ids=found.file_ids,
        prefix=found.prefix,
        source={
            "source": source.uri,
            "run": run.pk if run is not None else "",
            "logged_model": found.logged_model.pk if found.logged_model else "",
        },
    )
    described = describe_created(version, metadata.tags)
    if run is not None:
        described["run_id"] = run.pk
    return JsonResponse({"model_version": described})


@endpoint("GET")
@for_model(Role.VIEW)
def get(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """One version. View role."""
    number = params.version()
    described = cache.answer(
        model, ("version", number), lambda: describe_version_number(model, number)
    )
    return JsonResponse({"model_version": described})


@endpoint("PATCH")
@for_model(Role.EDIT)
def update(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Change a draft's description (other fields, such as status, are ignored). Edit role."""
    version = version_of(model, params.version())
    if "description" in params.data:
        description = params.text("description", max_length=MAX_DESCRIPTION)
        if description != version.description:
            version = mlflow_services.version_description_set(
                actor=request.user, version=version, description=description
            )
    return _answer(version)


@endpoint("DELETE")
@for_model(Role.EDIT)
def delete(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Delete a draft (and its aliases); submitted versions are refused. Edit role."""
    version = version_of(model, params.version())
    mlflow_services.version_delete_with_aliases(actor=request.user, version=version)
    return JsonResponse({})


@endpoint("POST")
@for_model(Role.VIEW, rule=MODEL_ALIAS)
def transition_stage(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Production/Staging: move that protected alias here (promote role, approved version).
    Archived: archive (manage role). None: remove this version's protected aliases (promote
    role). ``archive_existing_versions`` also archives the version that held the stage."""
    version = version_of(model, params.version())
    raw_stage = params.text("stage", required=True, max_length=40)
    stage = canonical_stage(raw_stage)
    if stage is None:
        raise invalid(f"Invalid stage {raw_stage!r}: use None, Staging, Production or Archived.")
    archive_existing = params.boolean("archive_existing_versions")
    actor, model = request.user, version.model
    note = f"MLflow stage transition of version {version.number} to {stage}."
    with transaction.atomic():
        if stage in ("Production", "Staging"):
            name = stage.lower()
            refuse_unsigned(request, model, name)
            holder = Alias.objects.filter(model=model, name=name).select_related("version").first()
            if holder is None or holder.version_id != version.pk:
                approvals.alias_set(actor=actor, model=model, name=name, version=version, note=note)
                if archive_existing and holder is not None:
                    approvals.version_archive(actor=actor, version=holder.version, reason=note)
        elif stage == "Archived":
            if version.status != ModelVersion.Status.ARCHIVED:
                approvals.version_archive(actor=actor, version=version, reason=note)
        else:
            if version.status == ModelVersion.Status.ARCHIVED:
                raise Conflict(f"Version {version.number} is archived; that cannot be undone.")
            for name in Alias.objects.filter(
                version=version, name__in=Alias.PROTECTED_NAMES
            ).values_list("name", flat=True):
                refuse_unsigned(request, model, name)
                approvals.alias_delete(actor=actor, model=model, name=name, note=note)
    return _answer(version)


@endpoint("GET")
@access(LOGIN)
def search(request: HttpRequest) -> JsonResponse:
    """Versions of the models the caller may view, filtered, ordered and paged."""
    params = Params(request)
    max_results = params.integer("max_results", default=PAGE_LIMIT, minimum=1, maximum=MAX_RESULTS)
    page_size = min(max_results, PAGE_LIMIT)
    try:
        clauses = filters.parse(params.text("filter", max_length=10000))
        q = filters.version_q(clauses)
        order = filters.order_by(
            params.text_list("order_by"),
            filters.VERSION_ORDER,
            default=["-updated_at", "model__name_key", "-number"],
            tail=["model__name_key", "-number", "pk"],
        )
        offset = filters.decode_token(params.text("page_token", max_length=200))
    except filters.FilterError as e:
        raise invalid(str(e)) from None
    pinned = next(
        (c.value for c in clauses if c.kind == "attribute" and c.key == "name" and c.op == "="),
        None,
    )
    if pinned is not None:
        # The usual search, the versions of one model: the access helper answers for that
        # model alone (a hidden or missing model has no versions to show).
        try:
            model = get_model_by_name_for_user(request.user, pinned)
        except Http404:
            return JsonResponse({})
        queryset = versions().filter(model_id=model.pk)
    else:
        queryset = versions().filter(model__in=visible_models(request.user))
    if any(c.key == "source_path" for c in clauses):
        queryset = with_source(queryset)
    rows = list(
        queryset.filter(q)
        .order_by(*order)
        .values_list("pk", flat=True)[offset : offset + page_size + 1]
    )
    body: dict = {}
    if rows[:page_size]:
        body["model_versions"] = describe_versions(rows[:page_size])
    if len(rows) > page_size:
        body["next_page_token"] = filters.encode_token(offset + page_size)
    return JsonResponse(body)


@endpoint("GET")
@for_model(Role.VIEW)
def get_download_uri(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Where the client downloads the version's files: the artifact proxy (an absolute URL, so
    it works whatever the tracking URI is), or the external URI it was registered with."""
    version = version_of(model, params.version())
    source = version.tags.filter(key=SOURCE_TAG).values_list("value", flat=True).first() or ""
    if source.split(":", 1)[0].lower() in EXTERNAL_SCHEMES:
        return JsonResponse({"artifact_uri": source})
    base = request.build_absolute_uri(reverse("mlflow:artifact_list"))
    return JsonResponse({"artifact_uri": f"{base}/{artifact_root(version.model, version.number)}"})


@endpoint("POST")
@for_model(Role.EDIT)
def set_tag(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Set a tag on a draft. Edit role."""
    version = version_of(model, params.version())
    key, value = check_tag(
        params.text("key", required=True, max_length=250), params.text("value", max_length=5000)
    )
    mlflow_services.version_tag_set(actor=request.user, version=version, key=key, value=value)
    return JsonResponse({})


@endpoint("DELETE")
@for_model(Role.EDIT)
def delete_tag(request: HttpRequest, params: Params, model: RegisteredModel) -> JsonResponse:
    """Delete a draft's tag (a missing one is fine). Edit role."""
    version = version_of(model, params.version())
    key, _ = check_tag(params.text("key", required=True, max_length=250))
    mlflow_services.version_tag_delete(actor=request.user, version=version, key=key)
    return JsonResponse({})
