"""Errors the catalogue's services raise for callers to turn into 4xx answers."""


class UploadTooLarge(Exception):
    """An upload went past REGISTRY_MAX_UPLOAD_BYTES: answered with 413."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"Uploads are limited to {limit:,} bytes.")


class Conflict(Exception):
    """A change that the object's current state does not allow: answered with 409."""
