"""Registered models and versions in MLflow's JSON shapes, loaded in a fixed number of queries
whatever the number of rows.

How the registry maps onto MLflow (docs/mlflow.md):
- ``current_stage`` is derived: the version holding the ``production`` alias is "Production",
  the one holding ``staging`` is "Staging", an archived version is "Archived", anything else
  "None".
- The approval state is the reserved tag ``registry.status`` (draft, in_review, approved,
  rejected, archived); ``registry.source`` keeps the ``source`` a client registered, exactly as
  given, and ``registry.source_verified=false`` marks an external URI whose files the registry
  never saw. Clients cannot set or delete ``registry.*`` tags.
- ``status`` is always READY: the client polls anything else for minutes.
"""

from django.db.models import (
    Case,
    CharField,
    F,
    OuterRef,
    Prefetch,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, Concat, RowNumber

from approvals.models import Alias
from models_app.models import ModelTag, ModelVersion, RegisteredModel, VersionTag

RESERVED_TAG_PREFIX = "registry."
STATUS_TAG = "registry.status"
SOURCE_TAG = "registry.source"
VERIFIED_TAG = "registry.source_verified"  # "false": an external URI, no files in the registry
PROTECTED_STAGES = {"production": "Production", "staging": "Staging"}
STAGES = ("None", "Staging", "Production", "Archived")
ARCHIVED = ModelVersion.Status.ARCHIVED


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def artifact_root(model: RegisteredModel, number: int) -> str:
    """Where a version's files live in the artifact proxy's namespace."""
    return f"registry/{model.slug}/{number}"


def stage_of(status: str, alias_names) -> str:
    for name, stage in PROTECTED_STAGES.items():
        if name in alias_names:
            return stage
    return "Archived" if status == ARCHIVED else "None"


def canonical_stage(raw: str) -> str | None:
    return next((s for s in STAGES if s.lower() == (raw or "").strip().lower()), None)


def version_json(version: ModelVersion, aliases: list[str]) -> dict:
    """``version`` comes from ``versions()`` (model, creator and tags loaded)."""
    tags = [(t.key, t.value) for t in version.tags.all()]
    source = next((value for key, value in tags if key == SOURCE_TAG), None)
    if source is None:
        source = f"mlflow-artifacts:/{artifact_root(version.model, version.number)}"
    data = {
        "name": version.model.name,
        "version": str(version.number),
        "creation_timestamp": ms(version.created_at),
        "last_updated_timestamp": ms(version.updated_at),
        "user_id": version.created_by.get_username(),
        "current_stage": stage_of(version.status, aliases),
        "description": version.description,
        "source": source,
        "run_id": version.source_run,
        "run_link": "",
        "status": "READY",
        "status_message": "",
        "tags": [{"key": k, "value": v} for k, v in tags if k != STATUS_TAG]
        + [{"key": STATUS_TAG, "value": version.status}],
    }
    if aliases:
        data["aliases"] = sorted(aliases)
    return data


def versions():
    """Versions with what version_json reads, in three queries for any number of rows."""
    return (
        ModelVersion.objects.select_related("model", "created_by")
        .prefetch_related(Prefetch("tags", queryset=VersionTag.objects.order_by("key")))
        .order_by()
    )


def with_source(queryset):
    """Annotate ``mlflow_source`` (what version_json reports as ``source``) for filtering."""
    registered = VersionTag.objects.filter(version=OuterRef("pk"), key=SOURCE_TAG).values("value")
    return queryset.annotate(
        mlflow_source=Coalesce(
            Subquery(registered[:1]),
            Concat(
                Value("mlflow-artifacts:/registry/"),
                F("model__slug"),
                Value("/"),
                Cast("number", CharField()),
                output_field=CharField(),
            ),
            output_field=CharField(),
        )
    )


def _aliases_by_version(version_ids) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    for version_id, name in Alias.objects.filter(version_id__in=version_ids).values_list(
        "version_id", "name"
    ):
        result.setdefault(version_id, []).append(name)
    return result


def describe_versions(page: list[ModelVersion]) -> list[dict]:
    """MLflow shapes of versions loaded through ``versions()`` (one more query, for aliases)."""
    aliases = _aliases_by_version([v.pk for v in page])
    return [version_json(v, aliases.get(v.pk, [])) for v in page]


def describe_version(version: ModelVersion) -> dict:
    version = versions().get(pk=version.pk)
    return describe_versions([version])[0]


def latest_per_stage(model_ids: list[int], alias_rows: list[dict]) -> dict[int, list]:
    """For each model, the newest version in each stage (MLflow's ``latest_versions``).

    Production and Staging are whoever holds the alias; among the other versions, the newest
    archived one is "Archived" and the newest of the rest is "None". One windowed query finds
    those two per model, one more loads them with the alias holders."""
    protected = [r["version_id"] for r in alias_rows if r["name"] in PROTECTED_STAGES]
    ranked = (
        ModelVersion.objects.filter(model_id__in=model_ids)
        .exclude(pk__in=protected)
        .order_by()
        .annotate(
            archived=Case(When(status=ARCHIVED, then=Value(1)), default=Value(0)),
            rank=Window(
                RowNumber(),
                partition_by=[F("model_id"), F("archived")],
                order_by=F("number").desc(),
            ),
        )
        .filter(rank=1)
        .values_list("pk", flat=True)
    )
    wanted = list(ranked) + protected
    result: dict[int, list] = {}
    if not wanted:
        return result
    for version in versions().filter(pk__in=wanted):
        result.setdefault(version.model_id, []).append(version)
    return result


def describe_models(page: list[RegisteredModel]) -> list[dict]:
    """MLflow shapes of models (owner loaded): tags, aliases and latest_versions in five more
    queries for the whole page."""
    ids = [m.pk for m in page]
    if not ids:
        return []
    tags: dict[int, list] = {}
    for model_id, key, value in ModelTag.objects.filter(model_id__in=ids).values_list(
        "model_id", "key", "value"
    ):
        tags.setdefault(model_id, []).append({"key": key, "value": value})
    alias_rows = list(
        Alias.objects.filter(model_id__in=ids)
        .order_by("name")
        .values("model_id", "name", "version_id", "version__number")
    )
    aliases_of_version: dict[int, list[str]] = {}
    aliases_of_model: dict[int, list[dict]] = {}
    for row in alias_rows:
        aliases_of_version.setdefault(row["version_id"], []).append(row["name"])
        aliases_of_model.setdefault(row["model_id"], []).append(
            {"alias": row["name"], "version": str(row["version__number"])}
        )
    latest = latest_per_stage(ids, alias_rows)
    result = []
    for model in page:
        data = {
            "name": model.name,
            "creation_timestamp": ms(model.created_at),
            "last_updated_timestamp": ms(model.updated_at),
            "user_id": model.owner.get_username(),
            "description": model.description,
            "tags": sorted(tags.get(model.pk, []), key=lambda t: t["key"]),
        }
        if aliases_of_model.get(model.pk):
            data["aliases"] = aliases_of_model[model.pk]
        described = [
            version_json(v, aliases_of_version.get(v.pk, [])) for v in latest.get(model.pk, [])
        ]
        if described:
            order = {stage: i for i, stage in enumerate(STAGES)}
            data["latest_versions"] = sorted(described, key=lambda d: order[d["current_stage"]])
        result.append(data)
    return result


def describe_model(model: RegisteredModel) -> dict:
    model = RegisteredModel.objects.select_related("owner").get(pk=model.pk)
    return describe_models([model])[0]


def latest_versions(model: RegisteredModel, stages: list[str]) -> list[dict]:
    """get-latest-versions: the newest version in each requested stage (all stages if none)."""
    alias_rows = list(Alias.objects.filter(model=model).values("model_id", "name", "version_id"))
    aliases_of_version: dict[int, list[str]] = {}
    for row in alias_rows:
        aliases_of_version.setdefault(row["version_id"], []).append(row["name"])
    found = latest_per_stage([model.pk], alias_rows).get(model.pk, [])
    described = [version_json(v, aliases_of_version.get(v.pk, [])) for v in found]
    wanted = set(stages or STAGES)
    order = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(
        (d for d in described if d["current_stage"] in wanted),
        key=lambda d: order[d["current_stage"]],
    )
