"""Versions: registering one with its metadata and files, changing a draft's metadata and
files, deleting a draft."""

import dataclasses
import functools

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import chain
from core import faults, sql
from core.errors import Conflict
from models_app import quotas, storage, summary
from models_app.access import Role, require, visible_models
from models_app.metadata import (
    VersionMetadata,
    parse_requirements,
)
from models_app.models import (
    Artifact,
    Dependency,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    VersionParent,
    VersionTag,
)
from models_app.names import name_key
from models_app.services.contributors import contributed
from models_app.services.datasets import datasets_resolve, datasets_write, links_insert
from models_app.services.files import (
    apply_filled,
    fields_from_files,
    inspect_files,
    inspection_audit,
    metadata_fields,
    prepare_files,
    store_files,
    version_fields,
)


def _resolve_parents(meta: VersionMetadata, *, actor) -> list:
    """Parents are looked up among models the actor may view: a hidden model is 'not found'."""
    rows = []
    errors = {}
    if not meta.parents:
        return rows
    visible = visible_models(actor)
    for i, parent in enumerate(meta.parents):
        version = (
            ModelVersion.objects.filter(
                model__in=visible, model__name_key=name_key(parent.model), number=parent.version
            )
            .select_related("model")
            .first()
        )
        if version is None:
            errors[f"parents[{i}]"] = [f"No version {parent.version} of {parent.model!r} found."]
        else:
            rows.append((version, parent.relation))
    if errors:
        raise ValidationError(errors)
    return rows


def _metadata_rows(version: ModelVersion, meta: VersionMetadata) -> list[list]:
    """The version's metrics, params, tags and dependencies as new rows, a list per kind."""
    return [
        [
            Metric(version=version, name=m.name, value=m.value, split=m.split, step=m.step)
            for m in meta.metrics
        ],
        [Param(version=version, key=k, value=v) for k, v in meta.params.items()],
        [VersionTag(version=version, key=k, value=v) for k, v in meta.tags.items()],
        [
            Dependency(version=version, name=n, specifier=s)
            for n, s in parse_requirements(meta.requirements)
        ],
    ]


def _metric_keys(metrics) -> list[tuple[str, str]]:
    """(name, split) of each metric, given as metadata or as version_state's dicts."""
    return [(m["name"], m["split"]) if isinstance(m, dict) else (m.name, m.split) for m in metrics]


def _write_parents(version: ModelVersion, parents) -> None:
    """The version's parent links, in one INSERT (each keeps its parent's name and number)."""
    if any(parent.pk == version.pk for parent, _ in parents):
        raise ValidationError({"parents": ["A version cannot be its own parent."]})
    sql.insert([VersionParent.linking(version, parent, rel) for parent, rel in parents])


def _apply_scalars(version: ModelVersion, meta: VersionMetadata) -> None:
    for field in (
        "description",
        "framework",
        "framework_version",
        "python_version",
        "requirements",
        "signature",
        "source_run",
        "source_repository",
        "source_commit",
    ):
        setattr(version, field, getattr(meta, field))


def version_state(version: ModelVersion) -> dict:
    """A version's metadata as a plain dict, for audit before/after and for diffs."""
    return {
        "description": version.description,
        "framework": version.framework,
        "framework_version": version.framework_version,
        "python_version": version.python_version,
        "requirements": version.requirements,
        "signature": version.signature,
        "source": {
            "run": version.source_run,
            "repository": version.source_repository,
            "commit": version.source_commit,
        },
        "metrics": [
            {"name": m.name, "value": m.value, "split": m.split}
            | ({"step": m.step} if m.step is not None else {})
            for m in version.metrics.all()
        ],
        "params": {p.key: p.value for p in version.params.all()},
        "tags": {t.key: t.value for t in version.tags.all()},
        "datasets": [
            {"name": link.dataset.name, "role": link.role}
            for link in version.dataset_links.select_related("dataset")
        ],
        # By id as well as by name: whoever later reads the event is shown the parent's name
        # only if they may view it (approvals.selectors.redact_lineage).
        "parents": [
            {
                "version_id": link.parent_id,
                "model": link.parent_model_name,
                "version": link.parent_number,
                "relation": link.relation,
            }
            for link in version.parent_links.order_by("pk")
        ],
    }


def _discards_files(service):
    """The service owns its incoming files' temporary copies (spooled uploads): they go when it
    returns or fails, whenever it fails: refused before storing (bad input, no role, the
    database down) as much as after."""

    @functools.wraps(service)
    def run(*, files=(), **kwargs):
        files = list(files)
        try:
            return service(files=files, **kwargs)
        finally:
            for f in files:
                f.discard()

    return run


@_discards_files
def version_create(
    *,
    actor,
    model: RegisteredModel,
    metadata: VersionMetadata,
    files: list[storage.IncomingFile] = (),
    adopt: list[storage.StoredFile] = (),
    source_model: str = "",
) -> ModelVersion:
    """Register a new version (a draft) with its metadata and files. The number is the next
    one of the model, assigned under a row lock, never reused.

    ``adopt``: files already in storage under server-made keys (e.g. uploaded through the
    MLflow artifact proxy); the version takes their keys over. They are not deleted when the
    registration fails: their owner keeps them. ``source_model``: the id of the MLflow logged
    model they come from, if any."""
    require(actor, model, Role.EDIT)
    files = list(files)
    adopted = list(adopt)
    prepare_files(files + adopted)
    # Everything that can be looked up and checked happens here, before the transaction, so
    # the model's row (and on SQLite the database) stays locked only for the writes.
    parents = _resolve_parents(metadata, actor=actor)
    datasets = datasets_resolve(metadata.datasets, actor=actor)
    # Read every file before it is stored (store() may move the temporary file away).
    inspected = inspect_files(files, adopted)
    filled = fields_from_files(metadata_fields(metadata), inspected, files, adopted)
    metadata = dataclasses.replace(metadata, **filled)
    # Adopted files were charged to their uploader already: they count against the model only,
    # and only where it does not hold their bytes yet (quotas.new_to_model).
    incoming = sum(f.size for f in files)
    stored_at = timezone.now()
    keys: list[str] = []
    try:
        # Before storing anything.
        quotas.precheck(user=actor, model=model, incoming=incoming, adopted=adopted)
        keys = store_files(model, files)  # (removes what it stored if it fails)
        # No savepoint: every caller lets a failure roll back its whole transaction.
        with transaction.atomic(savepoint=False):
            quotas.check(user=actor, model=model, incoming=incoming, adopted=adopted)
            # New datasets first: their rows are registry-wide, not the model's.
            datasets_write(datasets, actor=actor)
            version = ModelVersion(model=model, created_by=actor, source_model=source_model)
            _apply_scalars(version, metadata)
            # The number, the version, its metadata rows and dataset links in one statement on
            # PostgreSQL: the model's row stays locked from here to the commit, so the fewer
            # round trips the better (core/sql.py). When nothing else is written before the
            # audit event (no parents, files or dataset corrections: an MLflow registration),
            # the audit chain's head moves in that statement too; otherwise only after those
            # writes, so the registry-wide lock on the head is not held while they run.
            rows = [row for kind in _metadata_rows(version, metadata) for row in kind]
            rows += datasets.rows(model.pk)
            more_to_write = parents or files or adopted or datasets.fills
            head = sql.insert_numbered(
                version,
                "number",
                model,
                "next_version_number",
                children=rows,
                along=None if more_to_write else chain.head_step(model.pk),
                # The model's summary (models_app.summary): one more version, a draft, the
                # latest.
                bump=("version_count", summary.STATUS_COUNTS[ModelVersion.Status.DRAFT]),
                taken_into="latest_number",
            )
            if head is None:
                raise Conflict(f"Model {model.name} was deleted meanwhile.")
            summary.framework_changed(model.pk, "", version.framework)
            summary.metrics_changed(model.pk, (), _metric_keys(metadata.metrics))
            number = version.number
            _write_parents(version, parents)
            Artifact.objects.bulk_create(
                Artifact(
                    version=version,
                    path=f.path,
                    size=f.size,
                    sha256=f.sha256,
                    content_type=f.content_type,
                    storage_key=key,
                    uploaded_by_id=getattr(f, "uploaded_by_id", None) or actor.pk,
                    stored_at=when,
                    **inspected[f.path].as_artifact_fields(),
                )
                for f, key, when in [
                    *((f, key, stored_at) for f, key in zip(files, keys, strict=True)),
                    *((a, a.storage_key, a.stored_at) for a in adopted),
                ]
            )
            chain.record(
                actor=actor,
                action="version.created",
                target=version,
                model=model,
                after={
                    "number": number,
                    "files": [
                        {"path": f.path, "sha256": f.sha256, "size": f.size}
                        for f in files + adopted
                    ],
                    "metrics": {
                        m.name + (f"@{m.split}" if m.split else ""): m.value
                        for m in metadata.metrics
                    },
                    **inspection_audit(inspected, filled),
                },
                head=head or None,
            )
    except BaseException:
        storage.delete_quietly(keys)
        raise
    finally:
        storage.settle(keys)
    version.model = model
    return version


def _lock_draft(version: ModelVersion) -> ModelVersion:
    # The model's row first, then the version's: the order deleting a model takes them in (its
    # row, then its versions by cascade). Both in one SELECT … FOR UPDATE took them in the
    # plan's order, version first, and deadlocked with a model delete (issue 15, F14).
    list(RegisteredModel.objects.select_for_update().filter(pk=version.model_id).values("pk"))
    locked = (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related("model")
        .filter(pk=version.pk)
    ).first()
    if locked is None:  # deleted, with its model or alone, since the caller fetched it
        raise Conflict(f"Version {version.number} was deleted meanwhile.")
    if not locked.is_editable:
        raise Conflict(
            f"Version {locked.number} is {locked.get_status_display().lower()}: its files and "
            "metadata are frozen. Register a new version instead."
        )
    return locked


def version_update(*, actor, version: ModelVersion, metadata: VersionMetadata) -> ModelVersion:
    """Replace a draft's metadata (files are changed with artifact_add/artifact_delete)."""
    require(actor, version.model, Role.EDIT)
    parents = _resolve_parents(metadata, actor=actor)
    datasets = datasets_resolve(metadata.datasets, actor=actor)
    with transaction.atomic():
        datasets_write(datasets, actor=actor)
        locked = _lock_draft(version)
        before = version_state(locked)
        _apply_scalars(locked, metadata)
        locked.save()
        summary.framework_changed(locked.model_id, before["framework"], locked.framework)
        summary.metrics_changed(
            locked.model_id, _metric_keys(before["metrics"]), _metric_keys(metadata.metrics)
        )
        for related in ("metrics", "params", "tags", "dependencies", "dataset_links"):
            getattr(locked, related).all().delete()
        # Links to deleted parents, and to parents the actor may not view, stay: they could
        # not be given again (_resolve_parents), and they say where the version came from.
        locked.parent_links.filter(parent__model__in=visible_models(actor)).delete()
        for rows in _metadata_rows(locked, metadata):
            sql.insert(rows)  # one INSERT per kind, without the ORM's query building
        links_insert(datasets, locked)
        _write_parents(locked, parents)
        after = version_state(locked)
        changed = [k for k in after if after[k] != before[k]]
        contributed(locked, actor)
        chain.record(
            actor=actor,
            action="version.updated",
            target=locked,
            model=locked.model,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return locked


@_discards_files
def artifact_add(
    *, actor, version: ModelVersion, files: list[storage.IncomingFile]
) -> list[Artifact]:
    require(actor, version.model, Role.EDIT)
    files = list(files)
    existing = set(version.artifacts.values_list("path", flat=True))
    prepare_files(files, existing)
    if not version.is_editable:
        raise Conflict(f"Version {version.number} is not a draft: its files are frozen.")
    inspected = inspect_files(files, (), existing)
    incoming = sum(f.size for f in files)
    stored_at = timezone.now()
    keys: list[str] = []
    try:
        quotas.precheck(user=actor, model=version.model, incoming=incoming)
        keys = store_files(version.model, files)  # (removes what it stored if it fails)
        faults.point("files-stored")
        with transaction.atomic():
            quotas.check(user=actor, model=version.model, incoming=incoming)
            locked = _lock_draft(version)
            artifacts = Artifact.objects.bulk_create(
                Artifact(
                    version=locked,
                    path=f.path,
                    size=f.size,
                    sha256=f.sha256,
                    content_type=f.content_type,
                    storage_key=key,
                    uploaded_by=actor,
                    stored_at=stored_at,
                    **inspected[f.path].as_artifact_fields(),
                )
                for f, key in zip(files, keys, strict=True)
            )
            filled = fields_from_files(version_fields(locked), inspected, files, ())
            apply_filled(locked, filled)
            contributed(locked, actor)
            chain.record(
                actor=actor,
                action="artifact.added",
                target=locked,
                model=locked.model,
                after={
                    "files": [{"path": f.path, "sha256": f.sha256} for f in files],
                    **inspection_audit(inspected, filled),
                },
            )
            faults.point("files-recorded")
    except IntegrityError:
        storage.delete_quietly(keys)
        raise ValidationError({"files": ["A file with that path was added meanwhile."]}) from None
    except BaseException:
        storage.delete_quietly(keys)
        raise
    finally:
        storage.settle(keys)
    return artifacts


def artifact_delete(*, actor, artifact: Artifact) -> None:
    require(actor, artifact.version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock_draft(artifact.version)
        artifact = Artifact.objects.get(pk=artifact.pk, version=locked)
        key = artifact.storage_key
        contributed(locked, actor)
        chain.record(
            actor=actor,
            action="artifact.deleted",
            target=locked,
            model=locked.model,
            before={"path": artifact.path, "sha256": artifact.sha256},
        )
        artifact.delete()
        storage.release_on_commit([key])


def version_delete(*, actor, version: ModelVersion) -> None:
    """Only drafts may be deleted; the number is never given out again. Versions made from it
    keep their link, without the key (VersionParent.parent)."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock_draft(version)
        held = list(locked.aliases.values_list("name", flat=True))
        if held:
            raise Conflict(f"Version {locked.number} holds {', '.join(held)}; move it first.")
        keys = list(locked.artifacts.values_list("storage_key", flat=True))
        state = version_state(locked)
        chain.record(
            actor=actor,
            action="version.deleted",
            target=locked,
            model=locked.model,
            before=state,
        )
        locked.delete()
        summary.version_removed(locked.model_id, locked.status)
        summary.framework_changed(locked.model_id, locked.framework, "")
        summary.metrics_changed(locked.model_id, _metric_keys(state["metrics"]), ())
        storage.release_on_commit(keys)
