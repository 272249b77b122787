"""The API's own records: idempotency keys (see registry_site.api.idempotency)."""

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """The first answer to a create request sent with an ``Idempotency-Key`` header, kept for
    24 hours so that a client retrying after a lost response gets that answer again instead of
    a second object. Keys belong to one user; the unique constraint settles races."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and (canonical JSON) body: the same key with another request is
    # refused, not answered with the first request's result.
    request_hash = models.CharField(max_length=64)
    # Empty only inside the transaction that claimed the key and is still answering.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status})"
