from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from models_app.models import Artifact
from registry_site.mlflow_compat.models import StagedArtifact
from registry_site.mlflow_compat.services import staged_expire

PREFIX = "artifacts"
BATCH = 500
STAGED_MAX_AGE = timedelta(days=1)  # files uploaded through the MLflow proxy, not registered


def walk(storage, folder: str):
    """Every file key under ``folder``, depth first (listdir works on local storage and S3)."""
    try:
        dirs, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}"
    for name in sorted(dirs):
        yield from walk(storage, f"{folder}/{name}")


def batches(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Command(BaseCommand):
    help = (
        "Delete stored files under artifacts/ that no artifact row points at (left by uploads "
        "that failed or were killed half-way). Files younger than --min-age-minutes are kept, "
        "since an upload in progress stores its files before it records them. Files uploaded "
        "through the MLflow artifact proxy count as in use while staged; staged uploads that no "
        "version adopted within a day are expired first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--min-age-minutes", type=int, default=60)
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be deleted; delete nothing."
        )

    def handle(self, *args, min_age_minutes=60, dry_run=False, **options):
        if min_age_minutes < 0:
            raise CommandError("--min-age-minutes must be 0 or more.")
        storage = default_storage
        cutoff = timezone.now() - timedelta(minutes=min_age_minutes)
        expired = staged_expire(older_than=timezone.now() - STAGED_MAX_AGE, dry_run=dry_run)
        if expired:
            verb = "would expire" if dry_run else "expired"
            self.stdout.write(
                f"{verb} {len(expired)} staged MLflow upload(s) older than a day, never registered"
            )
        seen = referenced = recent = removed = 0
        for keys in batches(walk(storage, PREFIX), BATCH):
            seen += len(keys)
            known = set(
                Artifact.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True)
            ) | set(
                StagedArtifact.objects.filter(storage_key__in=keys).values_list(
                    "storage_key", flat=True
                )
            )
            referenced += len(known)
            for key in keys:
                if key in known:
                    continue
                modified = storage.get_modified_time(key)
                if modified > cutoff:
                    recent += 1
                    continue
                # A row may have been committed since the batch was read: look once more.
                if not dry_run and (
                    Artifact.objects.filter(storage_key=key).exists()
                    or StagedArtifact.objects.filter(storage_key=key).exists()
                ):
                    referenced += 1
                    continue
                removed += 1
                age = timezone.now() - modified
                if dry_run:
                    self.stdout.write(f"would delete {key} (stored {_age(age)} ago)")
                else:
                    storage.delete(key)
                    self.stdout.write(f"deleted {key} (stored {_age(age)} ago)")
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{seen} stored files: {referenced} in use, {recent} too recent to judge, "
                f"{removed} orphaned ({verb})."
            )
        )


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
