from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from models_app.models import PendingKey
from models_app.storage import referenced
from registry_site.invariants import PREFIXES, batches, walk
from registry_site.mlflow_compat.services import staged_expire

BATCH = 500
STAGED_MAX_AGE = timedelta(days=1)  # files uploaded through the MLflow proxy, not registered


class Command(BaseCommand):
    help = (
        "Delete stored files under artifacts/ and tracking/ that no row points at (no version's "
        "artifact, staged upload or run's file: one stored file may back several of them), "
        "left by uploads that failed or were killed half-way. Files younger than "
        "--min-age-minutes are kept, "
        "since an upload in progress stores its files before it records them; so are files an "
        "operation declared it is storing (pending keys) until they are that old, however old "
        "the file looks. Deletes that failed earlier (storage down) are retried first. "
        "Files uploaded "
        "through the MLflow artifact proxy count as in use while staged; staged uploads that no "
        "version adopted within a day are expired first. Partial uploads left in the spool "
        "folder (FILE_UPLOAD_TEMP_DIR) by a killed worker go after the same --min-age-minutes."
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
        retried = 0 if dry_run else self._retry_deletes(storage)
        seen = referenced = recent = removed = 0
        for keys in batches(chain.from_iterable(walk(p) for p in PREFIXES), BATCH):
            seen += len(keys)
            known = _referenced(keys)
            pending = dict(PendingKey.objects.filter(key__in=keys).values_list("key", "created_at"))
            referenced += len(known)
            for key in keys:
                if key in known:
                    continue
                try:
                    # A pending key dates from when its operation started; any other file
                    # from its own time.
                    stored = pending.get(key) or storage.get_modified_time(key)
                except FileNotFoundError:  # deleted meanwhile (another sweep)
                    continue
                if stored > cutoff:
                    recent += 1
                    continue
                # A row may have been committed since the batch was read: look once more.
                if not dry_run and _referenced([key]):
                    referenced += 1
                    continue
                removed += 1
                age = timezone.now() - stored
                if dry_run:
                    self.stdout.write(f"would delete {key} (stored {_age(age)} ago)")
                else:
                    storage.delete(key)
                    PendingKey.objects.filter(key=key).delete()
                    self.stdout.write(f"deleted {key} (stored {_age(age)} ago)")
        if not dry_run:
            # Operations that died before storing anything, or after their commit.
            PendingKey.objects.filter(kind=PendingKey.Kind.STORE, created_at__lte=cutoff).delete()
        verb = "would delete" if dry_run else "deleted"
        spooled = self._sweep_spool(cutoff, dry_run=dry_run)
        if spooled:
            self.stdout.write(f"{verb} {spooled} partial upload(s) left in the spool folder")
        retried_note = f" {retried} failed delete(s) retried." if retried else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{seen} stored files: {referenced} in use, {recent} too recent to judge, "
                f"{removed} orphaned ({verb}).{retried_note}"
            )
        )

    def _sweep_spool(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Uploads being received are spooled to FILE_UPLOAD_TEMP_DIR and removed once stored
        or refused; a worker killed meanwhile leaves its partial file behind. Those older than
        the cutoff go, and so do empty folders (an import's work folder)."""
        root = Path(settings.FILE_UPLOAD_TEMP_DIR or "")
        if not settings.FILE_UPLOAD_TEMP_DIR or not root.is_dir():
            return 0
        removed = 0
        for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
            try:
                modified = datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)
                if modified > cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    if not dry_run and not any(path.iterdir()):
                        path.rmdir()
                    continue
                removed += 1
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:  # finished meanwhile
                continue
        return removed

    def _retry_deletes(self, storage) -> int:
        """Files whose rows were deleted but whose deletion failed: delete them now (unless a
        row names the key, which server-made keys never are again)."""
        done = 0
        rows = PendingKey.objects.filter(kind=PendingKey.Kind.DELETE).order_by("pk")
        for keys in batches(rows.values_list("key", flat=True).iterator(), BATCH):
            known = _referenced(keys)
            for key in keys:
                if key not in known:
                    storage.delete(key)  # a key already gone is not an error
                    self.stdout.write(f"deleted {key} (an earlier delete had failed)")
                    done += 1
                PendingKey.objects.filter(key=key, kind=PendingKey.Kind.DELETE).delete()
        return done


def _referenced(keys: list[str]) -> set[str]:
    """Keys a version's artifact, a staged upload or a run's file names (one snapshot)."""
    return referenced(keys)


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
