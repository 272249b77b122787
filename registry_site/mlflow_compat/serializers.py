"""Registered models and versions in MLflow's JSON shapes, loaded in a fixed number of queries
whatever the number of rows.

How the registry maps onto MLflow (docs/mlflow.md):
- ``current_stage`` is derived: the version holding the ``production`` alias is "Production",
  the one holding ``staging`` is "Staging", an archived version is "Archived", anything else
  "None".
- The approval state is the reserved tag ``registry.status`` (draft, in_review, approved,
  rejected, archived); ``registry.source`` keeps the ``source`` a client registered, exactly as
  given, and ``registry.source_verified=false`` marks an external URI whose files the registry
  never saw; ``registry.revalidation_due`` and ``registry.approval_expires_at`` say whether an
  approval has expired (docs/approval-expiry.md). Clients cannot set or delete ``registry.*``
  tags.
- ``status`` is always READY: the client polls anything else for minutes.

Every MLflow read goes through here, so the rows are read with hand-written SQL into plain
tuples (core/sql.py says why), in a fixed number of queries whatever the page size:
versions in three (rows, then tags and aliases together), models in three more for their
tags and aliases, latest versions, and those versions' tags and aliases.
"""

from datetime import datetime
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db.models import CharField, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.http import Http404

from approvals import expiry
from approvals.models import Alias, ReviewPolicy
from core import sql
from models_app.models import ModelTag, ModelVersion, RegisteredModel, VersionTag

RESERVED_TAG_PREFIX = "registry."
STATUS_TAG = "registry.status"
DIGEST_TAG = "registry.content_digest"  # recorded at submission (docs/content-digest.md)
SOURCE_TAG = "registry.source"
VERIFIED_TAG = "registry.source_verified"  # "false": an external URI, no files in the registry
# On approved versions whose policy sets approval_valid_days (docs/approval-expiry.md).
REVALIDATION_TAG = "registry.revalidation_due"  # "true" / "false"
EXPIRES_TAG = "registry.approval_expires_at"  # ISO 8601, UTC
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


User = get_user_model()

# The columns of a version that its MLflow shape needs, with its model's name and slug, its
# creator's username and its policy's approval_valid_days: (id, model_id, number, status,
# description, created_at, updated_at, source_run, model name, model slug, username,
# content_digest, decided_at, approval_valid_days, source_model).
_VERSION_COLUMNS = (
    "v.id, v.model_id, v.number, v.status, v.description, v.created_at, v.updated_at, "
    "v.source_run, m.name, m.slug, u.username, v.content_digest, v.decided_at, "
    "p.approval_valid_days, v.source_model"
)


def _version_from(where: str) -> str:
    return (
        f"SELECT {_VERSION_COLUMNS} FROM {sql.table(ModelVersion)} v "  # noqa: S608 (sql.py)
        f"JOIN {sql.table(RegisteredModel)} m ON m.id = v.model_id "
        f"JOIN {sql.table(User)} u ON u.id = v.created_by_id "
        f"LEFT JOIN {sql.table(ReviewPolicy)} p ON p.model_id = v.model_id WHERE {where}"
    )


def _details(version_ids: list[int]) -> tuple[dict[int, list], dict[int, list[str]]]:
    """Tags (ordered by key) and alias names of these versions, in one query."""
    tags: dict[int, list] = {}
    aliases: dict[int, list[str]] = {}
    if not version_ids:
        return tags, aliases
    tagged, tag_params = sql.among("version_id", version_ids)
    aliased, alias_params = sql.among("version_id", version_ids)
    rows = sql.fetch(
        f"SELECT 't', version_id, {sql.quote('key')}, value FROM {sql.table(VersionTag)} "  # noqa: S608
        f"WHERE {tagged} "
        f"UNION ALL SELECT 'a', version_id, name, '' FROM {sql.table(Alias)} "
        f"WHERE {aliased} ORDER BY 1, 2, 3",
        [*tag_params, *alias_params],
    )
    for kind, version_id, key, value in rows:
        if kind == "t":
            tags.setdefault(version_id, []).append((key, value))
        else:
            aliases.setdefault(version_id, []).append(key)
    return tags, aliases


def _expiry_tags(status: str, decided, valid_days) -> list[dict]:
    """``registry.approval_expires_at`` and ``registry.revalidation_due``, on approved
    versions of models whose policy lets approvals expire (approvals/expiry.py decides)."""
    state = expiry.approval_expiry(status=status, approved_at=decided, valid_days=valid_days)
    if state.expires_at is None:
        return []
    return [
        {"key": EXPIRES_TAG, "value": state.expires_at.isoformat()},
        {"key": REVALIDATION_TAG, "value": "true" if state.due else "false"},
    ]


def _version_json(row: tuple, tags: list, aliases: list[str], as_datetime) -> dict:
    (_pk, _model_id, number, status, description, created, updated, run, name, slug, user,
     digest, decided, valid_days, logged_model) = row  # fmt: skip
    source = next((value for key, value in tags if key == SOURCE_TAG), None)
    if source is None:
        source = f"mlflow-artifacts:/registry/{slug}/{number}"
    data = {
        "name": name,
        "version": str(number),
        "creation_timestamp": ms(as_datetime(created)),
        "last_updated_timestamp": ms(as_datetime(updated)),
        "user_id": user,
        "current_stage": stage_of(status, aliases),
        "description": description,
        "source": source,
        "run_id": run,
        "run_link": "",
        "status": "READY",
        "status_message": "",
        "tags": [{"key": k, "value": v} for k, v in tags if k != STATUS_TAG]
        + [{"key": STATUS_TAG, "value": status}]
        + ([{"key": DIGEST_TAG, "value": digest}] if digest else [])
        + _expiry_tags(status, as_datetime(decided) if decided else None, valid_days),
    }
    if aliases:
        data["aliases"] = sorted(aliases)
    if logged_model:  # registered from a logged model (MLflow 3's ModelVersion.model_id)
        data["model_id"] = logged_model
    return data


def _describe_rows(rows: list[tuple]) -> list[dict]:
    tags, aliases = _details([row[0] for row in rows])
    as_datetime = sql.converter(ModelVersion, "created_at")
    return [
        _version_json(row, tags.get(row[0], []), aliases.get(row[0], []), as_datetime)
        for row in rows
    ]


def describe_versions(version_ids: list[int]) -> list[dict]:
    """MLflow shapes of these versions, in the order given, in two queries."""
    if not version_ids:
        return []
    where, params = sql.among("v.id", version_ids)
    rows = sql.fetch(_version_from(where), params)
    by_id = {row[0]: row for row in rows}
    return _describe_rows([by_id[pk] for pk in version_ids if pk in by_id])


def describe_version(version: ModelVersion) -> dict:
    return describe_versions([version.pk])[0]


def describe_created(version: ModelVersion, tags: dict[str, str]) -> dict:
    """The MLflow shape of a version this request has just created, from what it wrote: the
    tags it was given, no aliases yet (nothing to read back)."""
    row = (
        version.pk,
        version.model_id,
        version.number,
        version.status,
        version.description,
        version.created_at,
        version.updated_at,
        version.source_run,
        version.model.name,
        version.model.slug,
        version.created_by.get_username(),
        version.content_digest,
        version.decided_at,
        None,  # a version just created is a draft: its approval cannot expire
        version.source_model,
    )
    return _version_json(row, sorted(tags.items()), [], lambda value: value)


def describe_version_number(model: RegisteredModel, number: int) -> dict:
    """Version ``number`` of a model the caller may view (it came from an access helper)."""
    rows = sql.fetch(_version_from("v.model_id = %s AND v.number = %s"), [model.pk, number])
    if not rows:
        raise Http404(f"Model version {model.name} {number} not found.")
    return _describe_rows(rows)[0]


def describe_alias_holder(model: RegisteredModel, alias: str) -> dict | None:
    """The version an alias of the model points at (``latest``: the newest), or None."""
    if alias.lower() == "latest":
        where = (
            "v.model_id = %s AND v.number = "  # noqa: S608 (sql.py)
            f"(SELECT MAX(number) FROM {sql.table(ModelVersion)} WHERE model_id = %s)"
        )
        params = [model.pk, model.pk]
    else:
        where = (
            f"v.id = (SELECT version_id FROM {sql.table(Alias)} WHERE model_id = %s AND name = %s)"  # noqa: S608
        )
        params = [model.pk, alias.lower()]
    rows = sql.fetch(_version_from(where), params)
    return _describe_rows(rows)[0] if rows else None


def versions():
    """The versions search filters and orders (describe_versions() then reads the page)."""
    return ModelVersion.objects.order_by()


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


def _latest_rows(model_ids: list[int], protected: list[int]) -> list[tuple]:
    """For each model, the newest version in each stage (MLflow's ``latest_versions``).

    Production and Staging are whoever holds the alias; among the other versions, the newest
    archived one is "Archived" and the newest of the rest is "None". Each "newest" is an index
    probe per model (version_model_status_idx), not a scan of every version, so the cost does
    not grow with the number of versions of a model."""
    newest = []
    params: list = []
    for op in ("<>", "="):
        of_model, model_params = sql.among("m.id", model_ids)
        not_held, held_params = sql.not_among("x.id", protected)
        newest.append(
            f"SELECT (SELECT x.id FROM {sql.table(ModelVersion)} x "  # noqa: S608 (sql.py)
            f"WHERE x.model_id = m.id AND x.status {op} '{ARCHIVED}' AND {not_held} "
            f"ORDER BY x.number DESC LIMIT 1) FROM {sql.table(RegisteredModel)} m "
            f"WHERE {of_model}"
        )
        params += [*held_params, *model_params]
    # The state is written into the statement (a constant, not input) so that PostgreSQL's
    # generic plan for it can use the index.
    held, held_params = sql.among("id", protected)
    newest.append(f"SELECT id FROM {sql.table(ModelVersion)} WHERE {held}")  # noqa: S608
    return sql.fetch(
        _version_from(sql.among_selected("v.id", " UNION ALL ".join(newest))),
        params + held_params,
    )


STAGE_ORDER = {stage: i for i, stage in enumerate(STAGES)}


class ModelRow(NamedTuple):
    """What a model's MLflow shape needs (``MODEL_ROW`` for ``values_list``)."""

    pk: int
    name: str
    created_at: datetime
    updated_at: datetime
    description: str
    owner: str


MODEL_ROW = ("pk", "name", "created_at", "updated_at", "description", "owner__username")


def describe_models(page: list[ModelRow]) -> list[dict]:
    """MLflow shapes of models: tags and aliases in one query, latest_versions in three more,
    for the whole page."""
    ids = [m.pk for m in page]
    if not ids:
        return []
    tagged, tag_params = sql.among("t.model_id", ids)
    aliased, alias_params = sql.among("a.model_id", ids)
    rows = sql.fetch(
        f"SELECT 't', t.model_id, t.{sql.quote('key')}, t.value, NULL, NULL "  # noqa: S608 (sql.py)
        f"FROM {sql.table(ModelTag)} t WHERE {tagged} "
        "UNION ALL SELECT 'a', a.model_id, a.name, '', a.version_id, v.number "
        f"FROM {sql.table(Alias)} a JOIN {sql.table(ModelVersion)} v ON v.id = a.version_id "
        f"WHERE {aliased} ORDER BY 1, 2, 3",
        [*tag_params, *alias_params],
    )
    tags: dict[int, list] = {}
    aliases_of_model: dict[int, list[dict]] = {}
    protected = []
    for kind, model_id, key, value, version_id, number in rows:
        if kind == "t":
            tags.setdefault(model_id, []).append({"key": key, "value": value})
        else:
            aliases_of_model.setdefault(model_id, []).append({"alias": key, "version": str(number)})
            if key in PROTECTED_STAGES:
                protected.append(version_id)
    found = _latest_rows(ids, protected)
    latest: dict[int, list[dict]] = {}
    for row, data in zip(found, _describe_rows(found), strict=True):
        latest.setdefault(row[1], []).append(data)
    result = []
    for model in page:
        data = {
            "name": model.name,
            "creation_timestamp": ms(model.created_at),
            "last_updated_timestamp": ms(model.updated_at),
            "user_id": model.owner,
            "description": model.description,
            "tags": tags.get(model.pk, []),
        }
        if aliases_of_model.get(model.pk):
            data["aliases"] = aliases_of_model[model.pk]
        if latest.get(model.pk):
            data["latest_versions"] = sorted(
                latest[model.pk], key=lambda d: STAGE_ORDER[d["current_stage"]]
            )
        result.append(data)
    return result


def describe_model(model: RegisteredModel) -> dict:
    """``model`` with its owner loaded (from an access helper or a service)."""
    row = ModelRow(
        model.pk,
        model.name,
        model.created_at,
        model.updated_at,
        model.description,
        model.owner.get_username(),
    )
    return describe_models([row])[0]


def latest_versions(model: RegisteredModel, stages: list[str]) -> list[dict]:
    """get-latest-versions: the newest version in each requested stage (all stages if none)."""
    protected = list(
        Alias.objects.filter(model=model, name__in=PROTECTED_STAGES).values_list(
            "version_id", flat=True
        )
    )
    described = _describe_rows(_latest_rows([model.pk], protected))
    wanted = set(stages or STAGES)
    return sorted(
        (d for d in described if d["current_stage"] in wanted),
        key=lambda d: STAGE_ORDER[d["current_stage"]],
    )
