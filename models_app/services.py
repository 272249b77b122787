"""Every change to the catalogue: one function each, one transaction each, one audit event each.

Files are written to storage before the transaction that records them, under fresh keys; if
anything fails afterwards they are deleted again, and a crash in between leaves only keys no
row points at, which ``manage.py sweep_orphans`` removes.
"""

import dataclasses
import logging

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from guardian.shortcuts import assign_perm

from audit import chain
from core import sql
from core.errors import Conflict
from models_app import inspection, storage
from models_app.access import Role, require, visible_models
from models_app.metadata import (
    VersionMetadata,
    check_unique_paths,
    parse_requirements,
    validate_artifact_path,
)
from models_app.models import (
    Artifact,
    CardSection,
    CardTemplate,
    Dataset,
    Dependency,
    Metric,
    MetricSpec,
    ModelCard,
    ModelTag,
    ModelVersion,
    Param,
    RegisteredModel,
    VersionDataset,
    VersionParent,
    VersionTag,
)
from models_app.names import name_key, validate_model_name

log = logging.getLogger(__name__)

MODEL_FIELDS = ("name", "description", "task", "visibility", "team")


def _model_state(model: RegisteredModel) -> dict:
    return {
        "name": model.name,
        "description": model.description,
        "task": model.task,
        "visibility": model.visibility,
        "team": model.team.name if model.team_id else None,
        "tags": dict(model.tags.values_list("key", "value")) if model.pk else {},
    }


def _set_name(model: RegisteredModel, name: str) -> None:
    display = validate_model_name(name)
    model.name = display
    model.name_key = name_key(display)
    model.slug = model.name_key


def _name_taken(name: str) -> ValidationError:
    return ValidationError(
        {"name": [f"The name {name!r} is taken (or too close to an existing name)."]},
        code="name_taken",
    )


def model_create(
    *,
    actor,
    name: str,
    description: str = "",
    task: str = RegisteredModel.Task.CLASSIFICATION,
    visibility: str = RegisteredModel.Visibility.PRIVATE,
    team: Group | None = None,
    tags: dict[str, str] | None = None,
    metric_directions: dict[str, bool] | None = None,
) -> RegisteredModel:
    """Create a model; its creator becomes its manager. A clashing name is a ValidationError."""
    model = RegisteredModel(
        description=description, task=task, visibility=visibility, team=team, owner=actor
    )
    _set_name(model, name)
    model.full_clean(exclude=["name_key", "slug"])
    if RegisteredModel.objects.filter(name_key=model.name_key).exists():
        raise _name_taken(model.name)
    try:
        with transaction.atomic():
            model.save()
            for key, value in (tags or {}).items():
                ModelTag.objects.create(model=model, key=key, value=value)
            for metric, higher in (metric_directions or {}).items():
                MetricSpec.objects.create(model=model, name=metric, higher_is_better=higher)
            for role in Role.MANAGE.implied:
                assign_perm(role.perm, actor, model)
            chain.record(
                actor=actor,
                action="model.created",
                target=model,
                model=model,
                after=_model_state(model),
            )
    except IntegrityError:
        # Two people creating the same name at once: the unique key decides, the loser is told.
        raise _name_taken(model.name) from None
    return model


def model_update(*, actor, model: RegisteredModel, **changes) -> RegisteredModel:
    """Change name, description, task, visibility, team and/or tags (``tags`` replaces all)."""
    require(actor, model, Role.MANAGE)
    unknown = set(changes) - set(MODEL_FIELDS) - {"tags"}
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
            before = _model_state(model)
            tags = changes.pop("tags", None)
            if "name" in changes and changes["name"] != model.name:
                _set_name(model, changes.pop("name"))
                if (
                    RegisteredModel.objects.filter(name_key=model.name_key)
                    .exclude(pk=model.pk)
                    .exists()
                ):
                    raise _name_taken(model.name)
            changes.pop("name", None)
            for field, value in changes.items():
                setattr(model, field, value)
            model.full_clean(exclude=["name_key", "slug"])
            after = _model_state(model) | ({"tags": dict(tags)} if tags is not None else {})
            if after == before:
                # Nothing to write: saving would still move updated_at, an answer of the MLflow
                # API that no audit event would mark (registry_site/mlflow_compat/cache.py).
                return model
            model.save()
            if tags is not None:
                model.tags.all().delete()
                ModelTag.objects.bulk_create(
                    ModelTag(model=model, key=k, value=v) for k, v in tags.items()
                )
            chain.record(
                actor=actor,
                action="model.updated",
                target=model,
                model=model,
                before={k: v for k, v in before.items() if before[k] != after[k]},
                after={k: v for k, v in after.items() if before[k] != after[k]},
            )
    except IntegrityError:
        raise _name_taken(model.name) from None
    return model


def metric_direction_set(
    *, actor, model: RegisteredModel, metric: str, higher_is_better: bool
) -> None:
    require(actor, model, Role.MANAGE)
    with transaction.atomic():
        spec, _ = MetricSpec.objects.update_or_create(
            model=model, name=metric, defaults={"higher_is_better": higher_is_better}
        )
        chain.record(
            actor=actor,
            action="model.metric_direction_set",
            target=model,
            model=model,
            after={"metric": metric, "higher_is_better": higher_is_better},
        )


def model_delete(*, actor, model: RegisteredModel, reason: str = "") -> None:
    """Delete a model, its versions and files, and every grant on it (a new model with the
    same name starts with none: they go with it, by their foreign key)."""
    require(actor, model, Role.MANAGE)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        keys = list(
            Artifact.objects.filter(version__model=model).values_list("storage_key", flat=True)
        )
        state = _model_state(model) | {"versions": model.versions.count()}
        chain.record(
            actor=actor,
            action="model.deleted",
            target=model,
            model=model,
            before=state,
            reason=reason,
        )
        try:
            VersionParent.objects.filter(child__model=model).delete()
            model.delete()
        except ProtectedError:
            raise Conflict(
                f"Versions of {model.name} are parents of other models' versions; "
                "delete or re-link those first."
            ) from None
        transaction.on_commit(lambda: storage.delete_quietly(keys))


# ---------------------------------------------------------------------------------------------
# Versions


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
        [Metric(version=version, name=m.name, value=m.value, split=m.split) for m in meta.metrics],
        [Param(version=version, key=k, value=v) for k, v in meta.params.items()],
        [VersionTag(version=version, key=k, value=v) for k, v in meta.tags.items()],
        [
            Dependency(version=version, name=n, specifier=s)
            for n, s in parse_requirements(meta.requirements)
        ],
    ]


def _write_links(version: ModelVersion, meta: VersionMetadata, *, actor, parents) -> None:
    """The version's dataset links (registering new datasets) and parent links."""
    for d in meta.datasets:
        dataset, created = Dataset.objects.get_or_create(
            name=d.name,
            defaults={
                "uri": d.uri,
                "digest": d.digest,
                "row_count": d.row_count,
                "description": d.description,
                "created_by": actor,
            },
        )
        if not created and d.digest and dataset.digest and d.digest != dataset.digest:
            raise ValidationError(
                {
                    "datasets": [
                        f"Dataset {d.name!r} is registered with digest {dataset.digest}, "
                        f"not {d.digest}. Register the new data under a new name."
                    ]
                }
            )
        VersionDataset.objects.create(version=version, dataset=dataset, role=d.role)
    for parent, relation in parents:
        if parent.pk == version.pk:
            raise ValidationError({"parents": ["A version cannot be its own parent."]})
        VersionParent.objects.create(child=version, parent=parent, relation=relation)


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
            {"name": m.name, "value": m.value, "split": m.split} for m in version.metrics.all()
        ],
        "params": {p.key: p.value for p in version.params.all()},
        "tags": {t.key: t.value for t in version.tags.all()},
        "datasets": [
            {"name": link.dataset.name, "role": link.role}
            for link in version.dataset_links.select_related("dataset")
        ],
        "parents": [
            {
                "model": link.parent.model.name,
                "version": link.parent.number,
                "relation": link.relation,
            }
            for link in version.parent_links.select_related("parent__model")
        ],
    }


def _prepare_files(files: list[storage.IncomingFile], existing: set[str] = frozenset()) -> None:
    errors = []
    for f in files:
        try:
            validate_artifact_path(f.path)
        except ValidationError as e:
            errors.extend(e.messages)
    try:
        check_unique_paths([f.path for f in files])
    except ValidationError as e:
        errors.extend(e.messages)
    for f in files:
        if f.path in existing:
            errors.append(f"This version already has a file at {f.path}.")
    if errors:
        raise ValidationError({"files": errors})


def _store_files(model: RegisteredModel, files: list[storage.IncomingFile]) -> list[str]:
    """Write every file under a fresh key; on failure delete what was written and re-raise."""
    keys: list[str] = []
    try:
        for f in files:
            key = storage.new_storage_key(model.pk)
            keys.append(key)
            storage.store(key, f)
    except BaseException:
        storage.delete_quietly(keys)
        raise
    return keys


def version_create(
    *,
    actor,
    model: RegisteredModel,
    metadata: VersionMetadata,
    files: list[storage.IncomingFile] = (),
    adopt: list[storage.StoredFile] = (),
) -> ModelVersion:
    """Register a new version (a draft) with its metadata and files. The number is the next
    one of the model, assigned under a row lock, never reused.

    ``adopt``: files already in storage under server-made keys (e.g. uploaded through the
    MLflow artifact proxy); the version takes their keys over. They are not deleted when the
    registration fails: their owner keeps them."""
    require(actor, model, Role.EDIT)
    files = list(files)
    adopted = list(adopt)
    _prepare_files(files + adopted)
    parents = _resolve_parents(metadata, actor=actor)
    # Read every file before it is stored (store() may move the temporary file away).
    inspected = _inspect_files(files, adopted)
    filled = _fields_from_files(_metadata_fields(metadata), inspected, files, adopted)
    metadata = dataclasses.replace(metadata, **filled)
    keys = _store_files(model, files)
    try:
        # No savepoint: every caller lets a failure roll back its whole transaction.
        with transaction.atomic(savepoint=False):
            version = ModelVersion(model=model, created_by=actor)
            _apply_scalars(version, metadata)
            # The number, the version and its metadata rows in one statement on PostgreSQL:
            # the model's row stays locked from here to the commit, so the fewer round trips
            # the better (core/sql.py). When nothing else is written before the audit
            # event (no datasets, parents or files: an MLflow registration), the audit chain's
            # head moves in that statement too; otherwise only after those writes, so the
            # registry-wide lock on the head is not held while they run.
            rows = [row for kind in _metadata_rows(version, metadata) for row in kind]
            more_to_write = metadata.datasets or parents or files or adopted
            head = sql.insert_numbered(
                version,
                "number",
                model,
                "next_version_number",
                children=rows,
                along=None if more_to_write else chain.head_step(model.pk),
            )
            if head is None:
                raise Conflict(f"Model {model.name} was deleted meanwhile.")
            number = version.number
            _write_links(version, metadata, actor=actor, parents=parents)
            Artifact.objects.bulk_create(
                Artifact(
                    version=version,
                    path=f.path,
                    size=f.size,
                    sha256=f.sha256,
                    content_type=f.content_type,
                    storage_key=key,
                    **inspected[f.path].as_artifact_fields(),
                )
                for f, key in [
                    *zip(files, keys, strict=True),
                    *((a, a.storage_key) for a in adopted),
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
                    **_inspection_audit(inspected, filled),
                },
                head=head or None,
            )
    except BaseException:
        storage.delete_quietly(keys)
        raise
    finally:
        for f in files:
            f.discard()
    version.model = model
    return version


def _lock_draft(version: ModelVersion) -> ModelVersion:
    locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
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
    with transaction.atomic():
        locked = _lock_draft(version)
        before = version_state(locked)
        _apply_scalars(locked, metadata)
        locked.save()
        for related in ("metrics", "params", "tags", "dependencies", "dataset_links",
                        "parent_links"):  # fmt: skip
            getattr(locked, related).all().delete()
        for rows in _metadata_rows(locked, metadata):
            sql.insert(rows)  # one INSERT per kind, without the ORM's query building
        _write_links(locked, metadata, actor=actor, parents=parents)
        after = version_state(locked)
        changed = [k for k in after if after[k] != before[k]]
        chain.record(
            actor=actor,
            action="version.updated",
            target=locked,
            model=locked.model,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return locked


def artifact_add(
    *, actor, version: ModelVersion, files: list[storage.IncomingFile]
) -> list[Artifact]:
    require(actor, version.model, Role.EDIT)
    files = list(files)
    existing = set(version.artifacts.values_list("path", flat=True))
    _prepare_files(files, existing)
    if not version.is_editable:
        raise Conflict(f"Version {version.number} is not a draft: its files are frozen.")
    inspected = _inspect_files(files, (), existing)
    keys = _store_files(version.model, files)
    try:
        with transaction.atomic():
            locked = _lock_draft(version)
            artifacts = Artifact.objects.bulk_create(
                Artifact(
                    version=locked,
                    path=f.path,
                    size=f.size,
                    sha256=f.sha256,
                    content_type=f.content_type,
                    storage_key=key,
                    **inspected[f.path].as_artifact_fields(),
                )
                for f, key in zip(files, keys, strict=True)
            )
            filled = _fields_from_files(_version_fields(locked), inspected, files, ())
            _apply_filled(locked, filled)
            chain.record(
                actor=actor,
                action="artifact.added",
                target=locked,
                model=locked.model,
                after={
                    "files": [{"path": f.path, "sha256": f.sha256} for f in files],
                    **_inspection_audit(inspected, filled),
                },
            )
    except IntegrityError:
        storage.delete_quietly(keys)
        raise ValidationError({"files": ["A file with that path was added meanwhile."]}) from None
    except BaseException:
        storage.delete_quietly(keys)
        raise
    finally:
        for f in files:
            f.discard()
    return artifacts


def artifact_delete(*, actor, artifact: Artifact) -> None:
    require(actor, artifact.version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock_draft(artifact.version)
        artifact = Artifact.objects.get(pk=artifact.pk, version=locked)
        key = artifact.storage_key
        chain.record(
            actor=actor,
            action="artifact.deleted",
            target=locked,
            model=locked.model,
            before={"path": artifact.path, "sha256": artifact.sha256},
        )
        artifact.delete()
        transaction.on_commit(lambda: storage.delete_quietly([key]))


def version_delete(*, actor, version: ModelVersion) -> None:
    """Only drafts may be deleted; the number is never given out again."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock_draft(version)
        if locked.child_links.exists():
            raise Conflict(
                f"Version {locked.number} is the parent of other versions; it cannot be deleted."
            )
        held = list(locked.aliases.values_list("name", flat=True))
        if held:
            raise Conflict(f"Version {locked.number} holds {', '.join(held)}; move it first.")
        keys = list(locked.artifacts.values_list("storage_key", flat=True))
        chain.record(
            actor=actor,
            action="version.deleted",
            target=locked,
            model=locked.model,
            before=version_state(locked),
        )
        locked.delete()
        transaction.on_commit(lambda: storage.delete_quietly(keys))


# ---------------------------------------------------------------------------------------------
# Datasets


def dataset_create(
    *,
    actor,
    name: str,
    uri: str = "",
    digest: str = "",
    row_count: int | None = None,
    description: str = "",
) -> Dataset:
    dataset = Dataset(
        name=name.strip(),
        uri=uri,
        digest=digest,
        row_count=row_count,
        description=description,
        created_by=actor,
    )
    dataset.full_clean()
    try:
        with transaction.atomic():
            dataset.save()
            chain.record(
                actor=actor,
                action="dataset.created",
                target=dataset,
                after={"name": dataset.name, "uri": uri, "digest": digest},
            )
    except IntegrityError:
        raise ValidationError({"name": ["A dataset with this name exists."]}) from None
    return dataset


# ---------------------------------------------------------------------------------------------
# Inspection: what the files themselves say (read, never executed; see models_app.inspection)

FILLABLE = ("framework", "framework_version", "python_version", "signature", "requirements")


def _inspect_files(
    files: list[storage.IncomingFile],
    adopted: list[storage.StoredFile],
    existing: set[str] = frozenset(),
) -> dict[str, inspection.Inspection]:
    """Each incoming file from its local path; adopted ones from storage (headers only)."""
    items = [
        (
            f.path,
            lambda seconds, f=f: inspection.inspect_file(f.local_path, f.path, seconds=seconds),
        )
        for f in files
    ] + [
        (
            a.path,
            lambda seconds, a=a: inspection.inspect_stored(
                a.storage_key, a.path, a.size, seconds=seconds
            ),
        )
        for a in adopted
    ]
    results = inspection.inspect_all(items)
    inspection.add_version_context(results, [*existing, *results])
    return results


def _metadata_fields(meta: VersionMetadata) -> dict:
    return {name: getattr(meta, name) for name in FILLABLE}


def _version_fields(version: ModelVersion) -> dict:
    return {name: getattr(version, name) for name in FILLABLE}


def _fields_from_files(current: dict, inspected: dict, files, adopted) -> dict:
    """The version fields the user left empty that the files fill: framework from any known
    format, signature/Python version/requirements from an MLmodel file."""
    local = {f.path: f.local_path for f in files}
    stored = {a.path: a.storage_key for a in adopted}

    def read_text(path: str) -> str | None:
        if path in local:
            return inspection.read_local_text(local[path])
        if path in stored:
            with storage.open_stored(stored[path]) as f:
                data = f.read(inspection.REQUIREMENTS_BYTES + 1)
            try:
                return None if len(data) > inspection.REQUIREMENTS_BYTES else data.decode()
            except UnicodeDecodeError:
                return None
        return None

    suggested = inspection.suggested_metadata(inspected, read_text)
    filled = {}
    if not current["framework"] and suggested.get("framework"):
        filled["framework"] = suggested["framework"]
        if not current["framework_version"] and suggested.get("framework_version"):
            filled["framework_version"] = suggested["framework_version"]
    if not current["python_version"] and suggested.get("python_version"):
        filled["python_version"] = suggested["python_version"]
    if current["signature"] is None and suggested.get("signature"):
        filled["signature"] = suggested["signature"]
    if not current["requirements"].strip() and suggested.get("requirements"):
        filled["requirements"] = suggested["requirements"]
    return filled


def _apply_filled(version: ModelVersion, filled: dict) -> None:
    if not filled:
        return
    for name, value in filled.items():
        setattr(version, name, value)
    version.save(update_fields=[*filled, "updated_at"])
    if "requirements" in filled:
        version.dependencies.all().delete()
        Dependency.objects.bulk_create(
            Dependency(version=version, name=n, specifier=spec)
            for n, spec in parse_requirements(filled["requirements"])
        )


def _inspection_audit(inspected: dict, filled: dict) -> dict:
    entry = {"formats": {path: result.format for path, result in sorted(inspected.items())}}
    dangerous = sorted(path for path, result in inspected.items() if result.dangerous)
    if dangerous:
        entry["dangerous_files"] = dangerous
    if filled:
        entry["filled_from_files"] = sorted(filled)
    return entry


# ---------------------------------------------------------------------------------------------
# Model cards

CARD_SECTION_MAX = 20_000
CARD_NOTES_MAX = 50_000


def _card_state(card: ModelCard) -> dict:
    return {key: getattr(card, key) for key in [*CardSection.values, "notes"]}


def _clean_card_text(sections: dict[str, str], notes: str) -> dict[str, str]:
    unknown = set(sections) - set(CardSection.values)
    if unknown:
        raise ValidationError({"card": [f"Unknown sections: {', '.join(sorted(unknown))}."]})
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for key, value in [*sections.items(), ("notes", notes)]:
        value = (value or "").strip()
        limit = CARD_NOTES_MAX if key == "notes" else CARD_SECTION_MAX
        if "\x00" in value:
            errors[key] = ["must not contain NUL characters"]
        elif len(value) > limit:
            errors[key] = [f"is at most {limit:,} characters (got {len(value):,})"]
        cleaned[key] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def card_update(
    *, actor, version: ModelVersion, sections: dict[str, str], notes: str | None = None
) -> ModelCard:
    """Write a draft's model card (the sections given; ``notes`` is the free Markdown). Edit
    role; once the version leaves draft its card is frozen like its files."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        if not locked.is_editable:
            raise Conflict(
                f"Version {locked.number} is {locked.get_status_display().lower()}: its model "
                "card is frozen. Register a new version to change it."
            )
        card = ModelCard.objects.select_for_update().filter(version=locked).first()
        card = card or ModelCard(version=locked)
        before = _card_state(card)
        cleaned = _clean_card_text(sections, before["notes"] if notes is None else notes)
        for key, value in cleaned.items():
            setattr(card, key, value)
        after = _card_state(card)
        changed = [k for k in after if after[k] != before[k]]
        if not changed and card.pk:
            return card
        card.updated_by = actor
        card.save()
        chain.record(
            actor=actor,
            action="card.updated",
            target=locked,
            model=locked.model,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return card


def card_template_update(
    *, actor, model: RegisteredModel, required_sections: list[str]
) -> CardTemplate:
    """Set which card sections every version of the model must fill before approval (the
    documentation gate checks them). Manage role."""
    require(actor, model, Role.MANAGE)
    wanted = [s for s in CardSection.values if s in set(required_sections)]
    unknown = set(required_sections) - set(CardSection.values)
    if unknown:
        raise ValidationError(
            {"required_sections": [f"Unknown sections: {', '.join(sorted(unknown))}."]}
        )
    with transaction.atomic():
        template = CardTemplate.objects.select_for_update().filter(model=model).first()
        before = list(template.required_sections) if template else []
        if template is not None and before == wanted:
            return template
        template = template or CardTemplate(model=model)
        template.required_sections = wanted
        template.save()
        chain.record(
            actor=actor,
            action="card_template.updated",
            target=model,
            model=model,
            before={"required_sections": before},
            after={"required_sections": wanted},
        )
    return template
