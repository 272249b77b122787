"""The MLflow API's own changes: staged uploads, registering them as a version, and the
read-modify-write edits MLflow does one field at a time (a tag, a description) that the
catalogue's services take as a whole document. Each runs in one transaction with its audit
event; the catalogue's services (and their audit events) run inside it.

Role checks happen in the views through the access helpers, and again in the approval
services they call.
"""

import dataclasses
import uuid
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.http import Http404
from django.utils import timezone

from approvals.models import Alias
from approvals.services import alias_delete
from audit import chain
from core.errors import Conflict
from models_app import quotas, services, storage
from models_app.access import Role, require
from models_app.metadata import VersionMetadata, parse_metadata
from models_app.models import ModelVersion, RegisteredModel
from registry_site.mlflow_compat.models import StagedArtifact
from tracking.models import TrackedFile


def staged_bytes_of_user(user_id: int) -> int:
    """Bytes a user staged that none of their versions' files refers to yet (once a version
    adopts an upload, its bytes count as the version's artifacts: not twice)."""
    return (
        StagedArtifact.objects.filter(uploaded_by_id=user_id)
        .exclude(quotas.charged_to(user_id))
        .aggregate(n=Sum("size"))["n"]
        or 0
    )


def staged_for_model(model_id: int):
    return StagedArtifact.objects.filter(model_id=model_id)


def staged_bytes_of_model(model_id: int) -> int:
    return staged_for_model(model_id).aggregate(n=Sum("size"))["n"] or 0


def _under(rows, prefix: str) -> list[StagedArtifact]:
    # Compared here, not in SQL: SQLite's LIKE (behind startswith) ignores case.
    return [r for r in rows if r.path == prefix or r.path.startswith(prefix + "/")]


def uploads_of(actor):
    """The uploads outside registry/ that ``actor`` may see: their own (superusers: all)."""
    rows = StagedArtifact.objects.filter(model__isnull=True)
    return rows if actor.is_superuser else rows.filter(uploaded_by=actor)


def upload_storage_key(user_id: int) -> str:
    """Server ids only, under artifacts/ (which the sweep walks), never the client's path."""
    return f"artifacts/uploads/{user_id}/{uuid.uuid4().hex}"


def staged_put(
    *, actor, model: RegisteredModel | None, path: str, incoming: storage.IncomingFile
) -> StagedArtifact:
    """Store an uploaded file at ``path``, replacing what was there (the old bytes are released
    once the new row is committed: kept while a version refers to them).

    With ``model``: ``path`` is relative to registry/<model>/; edit role. Without: an upload
    anywhere else in the namespace, owned by its first uploader; a path someone else uploaded
    to does not exist for anyone else (404, superusers included: only the owner replaces)."""
    if model is not None:
        require(actor, model, Role.EDIT)
        key = storage.new_storage_key(model.pk)
    else:
        key = upload_storage_key(actor.pk)
    scope = {"model": model} if model is not None else {"model__isnull": True}

    def record() -> StagedArtifact:
        with transaction.atomic():
            if model is not None and quotas.enabled():
                # Locked first (as every quota check does), so the replaced size is current.
                quotas.lock(user=actor, model=model)
                previous = StagedArtifact.objects.filter(**scope, path=path).first()
                quotas.check(
                    user=actor,
                    model=model,
                    incoming=incoming.size,
                    freed_model=previous.size if previous else 0,
                    freed_user=previous.size
                    if previous and previous.uploaded_by_id == actor.pk
                    else 0,
                )
            elif model is None and quotas.user_limit():
                # An upload of no model counts against its uploader only: their row, locked.
                get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
                previous = StagedArtifact.objects.filter(**scope, path=path).first()
                quotas.precheck(
                    user=actor,
                    model=None,
                    incoming=incoming.size,
                    freed_user=previous.size
                    if previous and previous.uploaded_by_id == actor.pk
                    else 0,
                )
            staged = StagedArtifact.objects.select_for_update().filter(**scope, path=path).first()
            if model is None and staged is not None and staged.uploaded_by_id != actor.pk:
                raise Http404(f"No file at {path[:200]}.")  # someone else's: not revealed
            replaced = staged.storage_key if staged else None
            if staged is None:
                staged = StagedArtifact(model=model, path=path)
            staged.storage_key = key
            staged.size = incoming.size
            staged.sha256 = incoming.sha256
            staged.content_type = incoming.content_type[:200]
            staged.uploaded_by = actor
            staged.uploaded_at = timezone.now()  # a re-upload is new: the expiry counts from it
            staged.save()
            chain.record(
                actor=actor,
                action="mlflow.file_staged",
                target=model if model is not None else staged,
                model=model,
                after={"path": path, "sha256": incoming.sha256, "size": incoming.size},
            )
            if replaced:  # a version may have adopted the replaced bytes: kept then
                storage.release_on_commit([replaced])
        return staged

    return storage.store_then_record(
        key, incoming, record, conflict=f"{path} was uploaded by someone else at the same moment."
    )


def staged_delete(*, actor, model: RegisteredModel | None, prefix: str) -> int:
    """Delete the staged file at ``prefix`` or every staged file under it (with ``model``:
    edit role; without: the caller's own uploads only). Their bytes are released: kept while a
    version refers to them."""
    if model is not None:
        require(actor, model, Role.EDIT)
        rows = StagedArtifact.objects.filter(model=model)
    else:
        rows = StagedArtifact.objects.filter(model__isnull=True, uploaded_by=actor)
    with transaction.atomic():
        rows = _under(rows.select_for_update().filter(path__startswith=prefix), prefix)
        if not rows:
            return 0
        keys = [r.storage_key for r in rows]
        chain.record(
            actor=actor,
            action="mlflow.staged_deleted",
            target=model if model is not None else rows[0],
            model=model,
            before={"files": [r.path for r in rows]},
        )
        StagedArtifact.objects.filter(pk__in=[r.pk for r in rows]).delete()
        storage.release_on_commit(keys)
    return len(rows)


def _adoptable(rows: list[StagedArtifact], prefix: str) -> list[storage.StoredFile]:
    adopt = []
    for row in rows:
        relative = row.path[len(prefix) + 1 :] or row.path.rsplit("/", 1)[-1]
        adopt.append(
            storage.StoredFile(
                path=relative,
                storage_key=row.storage_key,
                size=row.size,
                sha256=row.sha256,
                content_type=row.content_type,
                uploaded_by_id=row.uploaded_by_id,
                stored_at=row.uploaded_at,
            )
        )
    return adopt


def version_register(
    *,
    actor,
    model: RegisteredModel,
    metadata: VersionMetadata,
    staged_prefix: str | None = None,
    upload_prefix: str | None = None,
) -> ModelVersion:
    """A new draft version.

    ``staged_prefix``: the files staged for ``model`` under registry/<model>/<prefix> become
    its files (same keys, same digests) and stop being staged, in the same transaction.

    ``upload_prefix``: the caller's own uploads (superusers: anyone's) at or under that path
    outside registry/ become its files by reference: the version's artifacts name the same
    stored bytes (nothing is copied) and the uploads stay, so the same source may be registered
    again. Someone else's uploads, or none, are a 404, as for a path that does not exist.

    The staged rows are locked (``FOR UPDATE``) while the version's rows are written: a
    concurrent delete or expiry of them waits, so ``storage.release`` after it sees the new
    artifacts and keeps the bytes."""
    with transaction.atomic():
        adopt, rows = [], []
        if staged_prefix is not None:
            rows = _under(
                StagedArtifact.objects.select_for_update().filter(
                    model=model, path__startswith=staged_prefix
                ),
                staged_prefix,
            )
            if not rows:
                raise ValidationError(
                    {
                        "source": [
                            f"No files were uploaded to registry/{model.slug}/{staged_prefix}. "
                            "Upload them first (they stay staged for a day)."
                        ]
                    }
                )
            adopt = _adoptable(rows, staged_prefix)
        elif upload_prefix is not None:
            uploads = _under(
                uploads_of(actor)
                .select_for_update(of=("self",))
                .filter(path__startswith=upload_prefix),
                upload_prefix,
            )
            if not uploads:
                raise Http404(
                    f"No files were uploaded to {upload_prefix[:200]}. Upload them first "
                    "(they stay for a day after their last upload)."
                )
            adopt = _adoptable(uploads, upload_prefix)
        try:  # the Conflict rolls the whole transaction back: no savepoint needed
            with transaction.atomic(savepoint=False):
                version = services.version_create(
                    actor=actor, model=model, metadata=metadata, adopt=adopt
                )
        except IntegrityError:
            raise Conflict("Those files were registered by someone else meanwhile.") from None
        if rows:
            StagedArtifact.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return version


def version_register_from_tracking(
    *,
    actor,
    model: RegisteredModel,
    metadata: VersionMetadata,
    file_ids: list[int],
    prefix: str,
    source: dict,
) -> ModelVersion:
    """A new draft version whose files are tracked files of a run or logged model, adopted by
    reference: the version's files point at the same stored bytes (same keys, digests and
    sizes) and the tracked files stay as they are. ``prefix``: their folder, left out of the
    version's paths. ``source`` (the URI, run and logged model) goes into the audit log with the
    version. The caller has checked that ``actor`` may read them."""
    with transaction.atomic():
        # Locked, and read again: a file replaced since the caller looked is taken as it is now.
        rows = list(
            TrackedFile.objects.select_for_update().filter(pk__in=file_ids).order_by("path")
        )
        if len(rows) != len(file_ids):
            raise Conflict("Files of that run or logged model changed meanwhile; try again.")
        adopt = [
            storage.StoredFile(
                path=row.path[len(prefix) + 1 :] if prefix else row.path,
                storage_key=row.storage_key,
                size=row.size,
                sha256=row.sha256,
                content_type=row.content_type,
                uploaded_by_id=row.uploaded_by_id,
                stored_at=row.uploaded_at,
            )
            for row in rows
        ]
        if prefix and any(row.path == prefix for row in rows):  # the source is one file
            adopt = [dataclasses.replace(adopt[0], path=prefix.rsplit("/", 1)[-1])]
        with transaction.atomic(savepoint=False):
            version = services.version_create(
                actor=actor,
                model=model,
                metadata=metadata,
                adopt=adopt,
                source_model=source.get("logged_model") or "",
            )
        chain.record(
            actor=actor,
            action="version.registered_from_run",
            target=version,
            model=model,
            after={**source, "files": [f.path for f in adopt]},
        )
    return version


def staged_expire(*, older_than: datetime, dry_run: bool = False) -> list[str]:
    """Forget staged uploads last uploaded before ``older_than``, and release their files once
    that is committed: the bytes a version (or a run's file) refers to stay. Returns their
    storage keys."""
    with transaction.atomic():
        rows = list(
            StagedArtifact.objects.select_for_update(of=("self",))
            .filter(uploaded_at__lt=older_than)
            .select_related("model")
            .order_by("model_id", "path")
        )
        keys = [r.storage_key for r in rows]
        if dry_run or not rows:
            return keys
        by_model: dict[int | None, list[StagedArtifact]] = {}
        for row in rows:
            by_model.setdefault(row.model_id, []).append(row)
        for group in by_model.values():
            chain.record(
                actor=None,
                action="mlflow.staged_expired",
                target=group[0].model or group[0],
                model=group[0].model,
                before={"files": [r.path for r in group]},
                reason="Uploaded through the MLflow artifact proxy and not registered in time."
                if group[0].model_id
                else "Uploaded through the MLflow artifact proxy a day ago or more.",
            )
        StagedArtifact.objects.filter(pk__in=[r.pk for r in rows]).delete()
        storage.release_on_commit(keys)
    return keys


# ---------------------------------------------------------------------------------------------
# One field at a time, on top of the whole-document services


def _locked_draft_metadata(version: ModelVersion) -> tuple[ModelVersion, VersionMetadata]:
    locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    if not locked.is_editable:
        raise Conflict(
            f"Version {locked.number} is {locked.get_status_display().lower()}: its "
            "description and tags are frozen (only drafts can change). Register a new version "
            "to change them."
        )
    return locked, parse_metadata(services.version_state(locked))


def version_tag_set(*, actor, version: ModelVersion, key: str, value: str) -> ModelVersion:
    with transaction.atomic():
        locked, metadata = _locked_draft_metadata(version)
        metadata.tags = {**metadata.tags, key: value}
        return services.version_update(actor=actor, version=locked, metadata=metadata)


def version_tag_delete(*, actor, version: ModelVersion, key: str) -> ModelVersion:
    with transaction.atomic():
        locked, metadata = _locked_draft_metadata(version)
        if key not in metadata.tags:
            return locked
        metadata.tags = {k: v for k, v in metadata.tags.items() if k != key}
        return services.version_update(actor=actor, version=locked, metadata=metadata)


def version_description_set(*, actor, version: ModelVersion, description: str) -> ModelVersion:
    with transaction.atomic():
        locked, metadata = _locked_draft_metadata(version)
        metadata.description = description
        return services.version_update(actor=actor, version=locked, metadata=metadata)


def model_tag_set(*, actor, model: RegisteredModel, key: str, value: str) -> RegisteredModel:
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        tags = dict(locked.tags.values_list("key", "value"))
        return services.model_update(actor=actor, model=locked, tags={**tags, key: value})


def model_tag_delete(*, actor, model: RegisteredModel, key: str) -> RegisteredModel:
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        tags = dict(locked.tags.values_list("key", "value"))
        if key not in tags:
            return locked
        tags.pop(key)
        return services.model_update(actor=actor, model=locked, tags=tags)


def version_delete_with_aliases(*, actor, version: ModelVersion) -> None:
    """MLflow deletes a version's aliases with it. Only drafts may be deleted, and drafts hold
    only ordinary aliases (production and staging need an approved version)."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        if not locked.is_editable:
            raise Conflict(
                f"Version {locked.number} is {locked.get_status_display().lower()}; only drafts "
                "can be deleted. Archive it instead (transition its stage to Archived)."
            )
        for name in Alias.objects.filter(version=locked).values_list("name", flat=True):
            alias_delete(
                actor=actor, model=locked.model, name=name, note="Its version was deleted."
            )
        services.version_delete(actor=actor, version=locked)
