"""Files logged under a run's or a logged model's artifact location.

Stored through the project's storage under server-made keys (``tracking/<experiment>/<random
hex>``, never the client's file name) with their size and sha256, so that a version registered
from them can point at the same stored bytes."""

import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from audit import chain
from models_app import quotas, storage
from tracking.access import require_creator
from tracking.models import Lifecycle, LoggedModel, Run, TrackedFile


def tracked_bytes_of_user(user_id: int) -> int:
    """Bytes of the user's runs' and logged models' files that none of their versions' files
    refers to (a version registered from a run names the same stored bytes: not twice)."""
    return (
        TrackedFile.objects.filter(uploaded_by_id=user_id)
        .exclude(quotas.charged_to(user_id))
        .aggregate(n=Sum("size"))["n"]
        or 0
    )


def new_storage_key(experiment_id: int) -> str:
    return f"tracking/{experiment_id}/{uuid.uuid4().hex}"


def _check_open(owner: Run | LoggedModel) -> None:
    if owner.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"{owner.pk} is deleted; its files cannot change.")
    if owner.experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError(f"Experiment {owner.experiment_id} is deleted.")


def tracked_file_put(
    *, actor, owner: Run | LoggedModel, path: str, incoming: storage.IncomingFile
) -> TrackedFile:
    """Store a file at ``path`` under the run's or logged model's artifacts, replacing what
    was there (the old bytes are released once the new row is committed). Its creator only,
    while it (and its experiment) is not deleted."""
    is_run = isinstance(owner, Run)
    require_creator(actor, owner.creator_id, "run" if is_run else "logged model")
    _check_open(owner)
    key = new_storage_key(owner.experiment_id)
    owner_filter = {"run": owner} if is_run else {"logged_model": owner}

    def record() -> TrackedFile:
        with transaction.atomic():
            if quotas.user_limit():
                # The user's row is locked first (as every quota check does), so two uploads
                # at once cannot both take the last free bytes.
                get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
            found = (
                TrackedFile.objects.select_for_update().filter(**owner_filter, path=path).first()
            )
            if quotas.user_limit():
                quotas.precheck(
                    user=actor,
                    model=None,
                    incoming=incoming.size,
                    freed_user=found.size if found and found.uploaded_by_id == actor.pk else 0,
                )
            replaced = found.storage_key if found else None
            if found is None:
                found = TrackedFile(**owner_filter, path=path)
            found.storage_key = key
            found.size = incoming.size
            found.sha256 = incoming.sha256
            found.content_type = incoming.content_type[:200]
            found.uploaded_by = actor
            found.uploaded_at = timezone.now()
            found.save()
            chain.record(
                actor=actor,
                action="run.file_logged" if is_run else "logged_model.file_logged",
                target=owner,
                after={"path": path, "sha256": incoming.sha256, "size": incoming.size},
            )
            if replaced:  # a version may have adopted the replaced bytes: kept then
                storage.release_on_commit([replaced])
        return found

    return storage.store_then_record(
        key,
        incoming,
        record,
        conflict=f"{path} was uploaded by another request at the same moment.",
    )
