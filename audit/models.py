"""The audit log's tables: the chained events and the chain's head."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One change of state, append-only and chained: each row hashes the one before it.

    The actor and model are kept as plain columns next to non-constraining foreign keys, so a
    deleted user or model never rewrites history (an UPDATE would break the chain).
    """

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    model = models.ForeignKey(
        "models_app.RegisteredModel",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # audit_model_seq_idx starts with it
        null=True,
        blank=True,
        related_name="+",
    )
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "approvals_auditevent"  # created by the approvals app; the table stays
        ordering = ["-seq"]
        # A constraint rather than unique=True: PostgreSQL then has no second (LIKE) index.
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_unique_hash")]
        indexes = [
            models.Index(fields=["model", "-seq"], name="audit_model_seq_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            # The audit page's filters, newest first (issue 16): an actor's events, and an
            # action's (equal, or a prefix such as "review.": pattern_ops serves LIKE 'x%'
            # whatever the database's collation).
            models.Index(fields=["actor_username", "-seq"], name="audit_actor_seq_idx"),
            models.Index(
                fields=["action", "-seq"],
                name="audit_action_seq_idx",
                opclasses=["varchar_pattern_ops", "int8_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_label}"


class AuditChainHead(models.Model):
    """The newest link of the audit chain (one row): the sequence number and hash the next
    event follows. Appending an event moves it in the same transaction, and its row lock puts
    concurrent appends in order (``audit.record``). Kept apart from the events, it also tells
    when the newest events have gone: ``verify_chain`` compares the two."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "approvals_auditchainhead"

    def __str__(self) -> str:
        return f"audit chain head #{self.seq}"


class FailedSignIn(models.Model):
    """Failed sign-ins, counted per hour: one row per known user and address, or per address
    when the name typed matches no account. Unlike audit events these rows are not chained and
    may be pruned (``manage.py prune_failed_sign_ins``); the text typed as a username is never
    kept (it is sometimes a password typed into the wrong field)."""

    window_start = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    address = models.CharField(max_length=45, blank=True)
    failures = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-window_start", "-last_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["window_start", "user", "address"],
                condition=models.Q(user__isnull=False),
                name="failed_sign_in_user_window",
            ),
            models.UniqueConstraint(
                fields=["window_start", "address"],
                condition=models.Q(user__isnull=True),
                name="failed_sign_in_address_window",
            ),
        ]
        indexes = [models.Index(fields=["last_at"], name="failed_sign_in_last_at_idx")]

    def __str__(self) -> str:
        who = f"user #{self.user_id}" if self.user_id else "unknown name"
        return f"{self.failures} failed sign-ins ({who}, {self.address or '?'})"
