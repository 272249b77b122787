"""Artifact bytes: staging incoming files locally, storing them, reading them back.

Every incoming file is first a local file with a known size and SHA-256 (the upload handler
hashes while Django spools the upload to disk; the CLI and API hash while copying). Only then is
it stored, under a key made of server ids, and only after that does a database row point at it.

S3 uploads go from the local file's path with bounded concurrency: s3transfer's default upload
of a file object buffers up to ten 8 MiB parts in memory per upload.
"""

import errno
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, IntegrityError, transaction

from core.errors import Conflict, StorageFull, StorageUnavailable, UploadTooLarge
from models_app.models import Artifact, PendingKey

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


@dataclass
class IncomingFile:
    """A file ready to store: a local path with its size and digest already known."""

    path: str  # the relative path inside the version, as the client named it (validated)
    local_path: str
    size: int
    sha256: str
    content_type: str = "application/octet-stream"
    owned: bool = False  # a temporary file of ours: may be moved instead of copied

    def discard(self) -> None:
        if self.owned:
            Path(self.local_path).unlink(missing_ok=True)


@dataclass
class StoredFile:
    """A file already in storage under a server-made key, to be adopted by a version."""

    path: str
    storage_key: str
    size: int
    sha256: str
    content_type: str = "application/octet-stream"
    uploaded_by_id: int | None = None  # whose quota it counts against (None: the adopter's)
    stored_at: datetime | None = None


def hash_file(local_path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(local_path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def incoming_from_path(
    path: str, local_path: str, content_type: str = "application/octet-stream"
) -> IncomingFile:
    size, sha = hash_file(local_path)
    return IncomingFile(path, local_path, size, sha, content_type)


def incoming_from_bytes(
    path: str, content: bytes, content_type: str = "application/octet-stream"
) -> IncomingFile:
    """Small in-memory content (demo data, tests) as an owned temporary file."""
    fd, tmp = tempfile.mkstemp(prefix="incoming-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    incoming = incoming_from_path(path, tmp, content_type)
    incoming.owned = True
    return incoming


def spool_stream(stream, *, max_bytes: int) -> tuple[str, int, str]:
    """Copy a stream into a temporary file while hashing it; refuse past ``max_bytes``."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix="upload-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, size, digest.hexdigest()


def new_storage_key(model_id: int) -> str:
    """Server ids only: the model's id and a fresh random id, never the client's file name."""
    return f"artifacts/{model_id}/{uuid.uuid4().hex}"


def _db_usable() -> bool:
    """False inside a transaction already doomed by an error (cleanup then skips the table)."""
    connection = transaction.get_connection()
    return not (connection.in_atomic_block and connection.needs_rollback)


def store(key: str, incoming: IncomingFile) -> None:
    """Write the file under ``key``, after recording the key as pending (committed at once when
    no transaction is open, as in every service: the sweep then sees it); the caller records
    the file in its own transaction and calls ``settle`` once that committed or rolled back.
    The stored file is dated now, whatever the age of the local file it came from."""
    with transaction.atomic():
        PendingKey.objects.update_or_create(key=key, defaults={"kind": PendingKey.Kind.STORE})
    try:
        _write(key, incoming)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull from e
        raise StorageUnavailable from e
    except Exception as e:
        if _is_storage_error(e):
            raise StorageUnavailable from e
        raise


def _is_storage_error(e: Exception) -> bool:
    """An S3 client error, an S3 transfer failure or a connection failure or timeout."""
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return False
    return isinstance(e, (Boto3Error, BotoCoreError, ClientError, ConnectionError, TimeoutError))


def settle(keys: list[str]) -> None:
    """The transaction that recorded (or gave up) these stored keys has ended."""
    if keys and _db_usable():
        try:
            PendingKey.objects.filter(key__in=keys, kind=PendingKey.Kind.STORE).delete()
        except DatabaseError:  # the sweep removes stale keys after the grace period
            logger.exception("could not settle %d pending key(s)", len(keys))


def _write(key: str, incoming: IncomingFile) -> None:
    storage = default_storage
    if _is_s3(storage):
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            max_concurrency=2, multipart_chunksize=8 * 1024 * 1024, use_threads=True
        )
        storage.bucket.Object(storage._normalize_name(key)).upload_file(
            incoming.local_path,
            ExtraArgs={"ContentType": incoming.content_type},
            Config=config,
        )
        return
    if isinstance(storage, FileSystemStorage) and incoming.owned:
        target = Path(storage.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(incoming.local_path, target)
        os.utime(target)  # a moved file keeps its time: date it when stored
        return
    with open(incoming.local_path, "rb") as f:
        saved = storage.save(key, File(f))
    if saved != key:  # storages that rename on clash: ours never clash, so this is a bug
        storage.delete(saved)
        raise RuntimeError(f"storage renamed {key} to {saved}")


# ---------------------------------------------------------------------------------------------
# Shared bytes: one stored file, several rows


# Tables of other apps whose rows name stored files by their ``storage_key`` (the MLflow
# proxy's staged uploads, the tracking app's run files), registered from AppConfig.ready():
# this module imports no higher layer.
_referrers: list = []
REFERENCE_BATCH = 300  # keys per statement: a few tables x 300 stays under SQLite's limits


def refer(model) -> None:
    """Declare a table whose ``storage_key`` column names stored files: ``release`` keeps
    every file one of its rows names (call from AppConfig.ready())."""
    if model not in _referrers:
        _referrers.append(model)


def referring_models() -> list:
    return [Artifact, *_referrers]


def referenced(keys: list[str]) -> set[str]:
    """The keys among ``keys`` that a row of any referring table names.

    One statement per batch (a UNION over the tables), so every table is read in the same
    snapshot even under READ COMMITTED: see ``release`` for why that matters."""
    found: set[str] = set()
    keys = list(dict.fromkeys(keys))
    for start in range(0, len(keys), REFERENCE_BATCH):
        batch = keys[start : start + REFERENCE_BATCH]
        queries = [
            m.objects.filter(storage_key__in=batch).order_by().values_list("storage_key", flat=True)
            for m in referring_models()
        ]
        found.update(queries[0].union(*queries[1:], all=True).order_by())
    return found


def release(keys: list[str]) -> list[str]:
    """Delete the stored files among ``keys`` that no row refers to any more; keep the others.
    Call it after the commit that deleted (or repointed) the rows that named them, i.e. from
    ``transaction.on_commit``. Returns the keys whose files were deleted.

    Why this is race-safe against a registration adopting the same bytes at the same moment:
    a new reference to stored bytes is only ever made from an existing, committed row that
    names them (a staged upload, a run's file, another version's artifact), and the adopter
    locks that row (``SELECT … FOR UPDATE``) in the transaction that inserts its own rows, before
    reading the file. Deleting (or repointing) that row needs the same row lock (PostgreSQL's
    DELETE and UPDATE wait for it, cascades included), so the two are ordered:
    - adopter first: the deleter waits for the adopter's commit, so the adopter's new row is
      committed before the deletion is, hence before ``release`` runs and sees it;
    - deleter first: the adopter, once the lock is free, finds the row gone and adopts nothing.
    ``release`` reads every referring table in one statement (``referenced``): one snapshot,
    taken after the deletion committed. If no row names a key in it, no row ever can again
    (nothing is left to adopt from; keys are fresh random ids), so deleting the file next is
    safe. Reading the tables one query at a time would not be: an adoption committed between
    the query on artifacts and the query on staged uploads, with its staged row expired meanwhile,
    would be missed by both. A failure to read leaves the files (the sweep takes real orphans)."""
    keys = list(dict.fromkeys(k for k in keys if k))
    if not keys or not _db_usable():
        return []
    try:
        kept = referenced(keys)
    except DatabaseError:
        logger.exception("could not check references of %d stored file(s); kept", len(keys))
        return []
    gone = [k for k in keys if k not in kept]
    delete_quietly(gone)
    return gone


def release_on_commit(keys: list[str]) -> None:
    """``release`` once the current transaction commits (nothing if it rolls back)."""
    keys = list(keys)
    if keys:
        transaction.on_commit(lambda: release(keys))


def store_then_record(key: str, incoming: IncomingFile, record, *, conflict: str):
    """Store ``incoming`` under the fresh ``key``, then run ``record()`` (which opens its own
    transaction to write the row naming the key) and return what it returns. If recording
    fails the stored file is deleted (no committed row ever named it); a unique-constraint
    clash (another request wrote the same path at the same moment) becomes a ``Conflict``
    with that message. Either way the pending key is settled and the local file
    discarded."""
    try:
        store(key, incoming)
        return record()
    except IntegrityError:
        delete_quietly([key])
        raise Conflict(conflict) from None
    except BaseException:
        delete_quietly([key])
        raise
    finally:
        settle([key])
        incoming.discard()


def delete_quietly(keys: list[str]) -> None:
    """Delete stored files now, whoever refers to them: only for keys no committed row ever
    named (a store whose transaction failed or rolled back), and for ``release``. Files a row
    named go through ``release``, which keeps those another row still names. A failure is
    logged and the key kept as a pending delete, which ``sweep_orphans`` retries."""
    failed = []
    for key in keys:
        try:
            default_storage.delete(key)
        except Exception:  # noqa: BLE001 (cleanup must go on; sweep_orphans retries)
            logger.exception("could not delete %s", key)
            failed.append(key)
    if not keys or not _db_usable():
        return
    try:
        with transaction.atomic():
            PendingKey.objects.filter(key__in=keys).exclude(key__in=failed).delete()
            for key in failed:
                PendingKey.objects.update_or_create(
                    key=key, defaults={"kind": PendingKey.Kind.DELETE}
                )
    except DatabaseError:  # the files look like orphans: the sweep takes them after the grace
        logger.exception("could not record %d failed delete(s)", len(failed))


def open_stored(key: str):
    """A stored file as a stream to read in chunks. On S3 this is the GET response body itself:
    django-storages' S3File would buffer the whole object in memory first."""
    try:
        if _is_s3(default_storage):
            obj = default_storage.bucket.Object(default_storage._normalize_name(key))
            return obj.get()["Body"]
        return default_storage.open(key, "rb")
    except FileNotFoundError:
        raise
    except OSError as e:  # a disk error, an unmounted or unreadable volume
        raise StorageUnavailable from e
    except Exception as e:
        if _is_storage_error(e) and not _is_missing(e):
            raise StorageUnavailable from e
        raise


def _is_missing(e: Exception) -> bool:
    response = getattr(e, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def stored_digest(key: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open_stored(key) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _is_s3(storage) -> bool:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:
        return False
    return isinstance(storage, S3Storage)  # default_storage proxies __class__


def presigned_url(key: str, *, filename: str) -> str | None:
    """A short-lived S3 URL that downloads as an attachment, or None on local storage."""
    storage = default_storage
    if not _is_s3(storage):
        return None
    from django.utils.http import content_disposition_header

    return storage.url(
        key,
        parameters={
            "ResponseContentDisposition": content_disposition_header(True, filename),
            "ResponseContentType": "application/octet-stream",
        },
    )
