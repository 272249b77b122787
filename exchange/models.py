"""Imports from another registry (``manage.py import_registry``): one row per imported archive
and the audit history that came with it. The tables kept their names from when these models
lived in models_app (moved by state-only migrations; no data moved)."""

from django.db import models

from models_app.models import RegisteredModel


class RegistryImport(models.Model):
    """One archive imported by ``manage.py import_registry``. Its audit history is kept in
    ImportedAuditEvent, and anchored in this registry's own chain by a ``registry.imported``
    event that records the archive's digest and the imported chain's head hash."""

    archive_sha256 = models.CharField(max_length=64)
    imported_at = models.DateTimeField()
    imported_by = models.CharField(max_length=150, blank=True)
    model_names = models.JSONField(default=list, help_text="Names of the models imported.")
    audit_scope = models.CharField(max_length=16)  # "full" or "models"
    audit_events = models.PositiveIntegerField(default=0)
    audit_head_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "models_app_registryimport"
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"Import of {self.archive_sha256[:12]} on {self.imported_at:%Y-%m-%d}"


class ImportedAuditEvent(models.Model):
    """An audit event of the registry an archive came from, stored verbatim (ids included) so
    that its hash can be recomputed with audit.chain.compute_hash. Never edited."""

    batch = models.ForeignKey(RegistryImport, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)  # in the source registry
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    model_id = models.BigIntegerField(null=True, blank=True)  # in the source registry
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    ip_address = models.CharField(max_length=45, null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # The model it is about, in this registry (None: not imported, or a site-wide event).
    registered_model = models.ForeignKey(
        RegisteredModel,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        db_table = "models_app_importedauditevent"
        ordering = ["batch", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "seq"], name="imported_event_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"imported #{self.seq} {self.action} {self.target_label}"
