"""Errors the catalogue's services raise for callers to turn into 4xx answers."""


class UploadTooLarge(Exception):
    """An upload went past REGISTRY_MAX_UPLOAD_BYTES: answered with 413."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"Uploads are limited to {limit:,} bytes.")


class Conflict(Exception):
    """A change that the object's current state does not allow: answered with 409."""


class QuotaExceeded(Exception):
    """An upload that a storage quota does not leave room for: 413 when this upload is larger
    than what is left, 507 (Insufficient Storage) when nothing is left."""

    def __init__(self, message: str, *, exhausted: bool):
        self.exhausted = exhausted
        self.status = 507 if exhausted else 413
        super().__init__(message)


class RateLimited(Exception):
    """Too many requests of one kind in a window: answered with 429 and ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


class StorageUnavailable(Exception):
    """Artifact storage failed or did not answer (S3 error or timeout, disk error): answered
    with 503. Nothing was recorded; the client may retry later."""

    def __init__(self, message: str = ""):
        super().__init__(
            message
            or "Artifact storage is unavailable at the moment; nothing was changed. Try again "
            "later."
        )


class StorageFull(StorageUnavailable):
    """Artifact storage has no space left: answered with 507. Nothing was recorded."""

    def __init__(self):
        super().__init__(
            "Artifact storage is full; nothing was stored or recorded. Try again once an "
            "administrator has freed space."
        )


# A database that is down, restarting or dropped the connection (django.db's OperationalError and
# InterfaceError): not a bug and not the client's fault, so 503 with a plain message and a hint
# to retry, never a 500 with a traceback. The API, the MLflow API and the pages all answer it.
DATABASE_UNAVAILABLE = (
    "The registry's database is unavailable at the moment. Try again in a few seconds."
)
RETRY_AFTER_SECONDS = 5
