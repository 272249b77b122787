"""Review policies and gates, reviews, comments, aliases and their history, webhooks."""

from django.conf import settings
from django.db import models


def default_approval_meanings() -> list[str]:
    return ["Approved for production use", "Reviewed — technical", "Reviewed — risk and compliance"]


def default_rejection_meanings() -> list[str]:
    return ["Rejected — not fit for use", "Rejected — evidence insufficient"]


def default_promotion_meanings() -> list[str]:
    return ["Released for use under this alias", "Rolled back to the previous version"]


class ReviewPolicy(models.Model):
    """How versions of one model are reviewed. Set by holders of the manage role."""

    model = models.OneToOneField(
        "models_app.RegisteredModel", on_delete=models.CASCADE, related_name="review_policy"
    )
    required_approvals = models.PositiveSmallIntegerField(default=1)
    require_description = models.BooleanField(default=True)
    require_training_dataset = models.BooleanField(default=True)
    require_metrics = models.BooleanField(default=True)
    verify_artifacts = models.BooleanField(default=True)
    # Electronic signatures (docs/signatures.md): approving, rejecting, moving production or
    # staging and rolling back are signed with the signer's password and a meaning from these
    # lists. On for new models; models that existed before signatures keep it off until their
    # managers turn it on.
    signatures_required = models.BooleanField(default=True)
    machine_decisions_allowed = models.BooleanField(
        default=False,
        help_text="An API token alone may decide (shown as made by a token, never as a signature).",
    )
    approval_meanings = models.JSONField(default=default_approval_meanings)
    rejection_meanings = models.JSONField(default=default_rejection_meanings)
    promotion_meanings = models.JSONField(default=default_promotion_meanings)
    # Off when empty: an approval older than this many days makes the version "revalidation
    # due" (approvals/expiry.py), until reviewers revalidate it on the same content.
    approval_valid_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days an approval stays valid before the version is due for revalidation.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "review policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1, required_approvals__lte=10),
                name="policy_required_approvals_1_to_10",
            ),
            models.CheckConstraint(
                condition=models.Q(approval_valid_days__isnull=True)
                | models.Q(approval_valid_days__gte=1, approval_valid_days__lte=3650),
                name="policy_approval_valid_days_1_to_3650",
            ),
        ]

    def __str__(self) -> str:
        return f"Review policy of {self.model}"


class MetricGate(models.Model):
    """A metric rule of a policy: a threshold, a regression tolerance against production, or
    both. ``split`` empty means the metric without a split."""

    policy = models.ForeignKey(ReviewPolicy, on_delete=models.CASCADE, related_name="gates")
    metric = models.CharField(max_length=250)
    split = models.CharField(max_length=100, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    max_regression = models.FloatField(
        null=True,
        blank=True,
        help_text="How much worse than production the metric may be (absolute, ≥ 0).",
    )

    class Meta:
        ordering = ["metric", "split"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "metric", "split"], name="gate_unique_metric_split"
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__isnull=False)
                | models.Q(max_regression__isnull=False),
                name="gate_has_a_rule",
            ),
            models.CheckConstraint(
                condition=models.Q(max_regression__isnull=True) | models.Q(max_regression__gte=0),
                name="gate_regression_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric}{f' on {self.split}' if self.split else ''}"


class Review(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    version = models.ForeignKey(
        "models_app.ModelVersion", on_delete=models.CASCADE, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    override_reason = models.TextField(
        blank=True, help_text="Why the reviewer approved despite failing gates."
    )
    gates = models.JSONField(default=list, help_text="The gate checklist as the reviewer saw it.")
    content_digest = models.CharField(
        max_length=71, blank=True, help_text="The version's content digest the decision covers."
    )
    # 0: the review that led to the approval (or rejection); n: the n-th revalidation round of
    # an approved version, on the same content (see ModelVersion.review_round).
    round = models.PositiveSmallIntegerField(default=0)
    # A decision made by an API token alone (the policy allows machine decisions): the token's
    # name and key id. Such a decision is never a signature (docs/signatures.md).
    via_token = models.CharField(max_length=140, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A withdrawn submission discards its reviews (kept for the record, no longer counted).
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "reviewer", "round"],
                condition=models.Q(discarded_at__isnull=True),
                name="review_one_per_reviewer",
            ),
            models.CheckConstraint(
                condition=~models.Q(decision="reject") | ~models.Q(reason=""),
                name="review_reject_needs_reason",
            ),
        ]
        indexes = [
            # The inbox's decided lately: the newest reviews that stand, walked in order.
            models.Index(
                fields=["created_at", "id"],
                name="review_recent_idx",
                condition=models.Q(discarded_at__isnull=True),
            ),
            # The badge: the reviewer's standing reviews, read from the index alone.
            models.Index(
                fields=["reviewer", "version"],
                name="review_standing_idx",
                condition=models.Q(discarded_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.get_decision_display().lower()} {self.version}"

    @property
    def is_revalidation(self) -> bool:
        return self.round > 0


class Signature(models.Model):
    """An electronic signature: a named person's decision, made with their password at the
    moment of signing, with its meaning, bound to the content digest and to the audit event
    written with it. Never edited or deleted (the PostgreSQL trigger of migration 0010 refuses
    it); the review or alias move it signed may later be withdrawn or superseded, which the
    signature shows but does not lose."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approval"
        REJECT = "reject", "Rejection"
        PROMOTE = "promote", "Alias move"
        ROLLBACK = "rollback", "Rollback"
        REMOVE = "remove", "Alias removal"

    # The version signed for (for a removal, the version the alias left). Kept as names as
    # well, so a signature outlives its version's row.
    version = models.ForeignKey(
        "models_app.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signatures",
    )
    model_name = models.CharField(max_length=250)
    version_number = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    review = models.OneToOneField(
        Review, on_delete=models.SET_NULL, null=True, blank=True, related_name="signature"
    )
    alias_assignment = models.OneToOneField(
        "AliasAssignment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signature",
    )
    alias_name = models.CharField(max_length=64, blank=True)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures"
    )
    signer_username = models.CharField(max_length=150)
    printed_name = models.CharField(max_length=300)
    signed_at = models.DateTimeField(help_text="The database's clock (UTC) at signing.")
    meaning = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    content_digest = models.CharField(max_length=71)
    audit_seq = models.PositiveBigIntegerField()
    audit_hash = models.CharField(max_length=64, help_text="Hash of the audit event signed with.")
    # A signature restored by import_registry names an event of the imported history (the
    # exchange app's batch of this id), not of this registry's chain. A plain id: this app
    # sits below the exchange app.
    imported_batch_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["signed_at", "pk"]
        indexes = [models.Index(fields=["version", "signed_at"], name="signature_version_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["audit_seq"],
                condition=models.Q(imported_batch_id__isnull=True),
                name="signature_one_per_event",
            ),
            models.UniqueConstraint(
                fields=["imported_batch_id", "audit_seq"],
                condition=models.Q(imported_batch_id__isnull=False),
                name="signature_one_per_imported_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.printed_name}, {self.meaning}, {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Signatures are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Signatures are never deleted.")


class Comment(models.Model):
    version = models.ForeignKey(
        "models_app.ModelVersion", on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    metric = models.CharField(max_length=250, blank=True, help_text="The metric it is about.")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on {self.version}"


class Alias(models.Model):
    """A movable, named pointer to one version of a model (``production``, ``champion``…).

    One row per (model, name), so at any moment exactly one version holds an alias: the
    database, not only the code, guarantees a single production version.
    """

    PROTECTED_NAMES = ("production", "staging")

    model = models.ForeignKey(
        "models_app.RegisteredModel", on_delete=models.CASCADE, related_name="aliases"
    )
    name = models.CharField(max_length=64)
    version = models.ForeignKey(
        "models_app.ModelVersion", on_delete=models.RESTRICT, related_name="aliases"
    )
    protected = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-protected", "name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="alias_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.model}@{self.name}"


class AliasAssignment(models.Model):
    """History of an alias: every move, rollback and removal, never edited."""

    class Kind(models.TextChoices):
        PROMOTE = "promote", "Moved"
        ROLLBACK = "rollback", "Rolled back"
        REMOVE = "remove", "Removed"

    model = models.ForeignKey(
        "models_app.RegisteredModel", on_delete=models.CASCADE, related_name="alias_history"
    )
    alias_name = models.CharField(max_length=64)
    # The numbers are kept too: a draft that once held an alias may be deleted later.
    version = models.ForeignKey(
        "models_app.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alias_assignments",
    )
    version_number = models.PositiveIntegerField(null=True, blank=True)
    previous_version = models.ForeignKey(
        "models_app.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    previous_number = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    note = models.TextField(blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(db_index=True)
    # Made by an API token alone (machine decisions allowed): the token's name and key id.
    via_token = models.CharField(max_length=140, blank=True)

    class Meta:
        ordering = ["-assigned_at", "-pk"]
        indexes = [
            models.Index(fields=["model", "alias_name", "-assigned_at"], name="alias_history_idx")
        ]

    def __str__(self) -> str:
        return f"{self.model}@{self.alias_name} → {self.version} ({self.kind})"

    @property
    def decided_version_id(self) -> int | None:
        """The version this entry is a decision about (and a signature of it is for): the one
        the alias was put on, or for a removal the one it left."""
        return self.previous_version_id if self.kind == self.Kind.REMOVE else self.version_id


# ---------------------------------------------------------------------------------------------
# Webhooks: subscriptions of deployment tools, and the outbox of their deliveries.


class WebhookQuerySet(models.QuerySet):
    def with_summary(self):
        """Each subscription with its delivery counts and last delivery time, in one query."""
        pending = WebhookDelivery.Status.PENDING
        failed = WebhookDelivery.Status.FAILED
        return self.select_related("created_by").annotate(
            pending_count=models.Count("deliveries", filter=models.Q(deliveries__status=pending)),
            failed_count=models.Count("deliveries", filter=models.Q(deliveries__status=failed)),
            last_delivery_at=models.Max("deliveries__created_at"),
        )


class Webhook(models.Model):
    """A target URL told about changes of one model (``model`` set, manage role) or of every
    model (``model`` empty, staff only). The secret signs each delivery, so it is stored; it is
    shown once, when created or rotated."""

    ALL_EVENTS = "all"

    model = models.ForeignKey(
        "models_app.RegisteredModel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhooks",
    )
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list, help_text='Event names, or ["all"].')
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WebhookQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(url__startswith="https://")
                | models.Q(url__startswith="http://"),
                name="webhook_url_http_or_https",
            ),
        ]

    def __str__(self) -> str:
        from urllib.parse import urlsplit

        # Scheme and host only: paths often carry tokens, and this lands in the audit log.
        parts = urlsplit(self.url)
        return f"Webhook {self.pk} to {parts.scheme}://{parts.netloc}"

    def wants(self, event: str) -> bool:
        return self.ALL_EVENTS in self.events or event in self.events


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, now):
        """Pending deliveries whose time has come, of active subscriptions, oldest first."""
        return self.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            webhook__active=True,
        ).order_by("next_attempt_at", "pk")


class WebhookDelivery(models.Model):
    """One event for one subscription: written in the transaction of the change (an outbox
    row), sent by ``manage.py deliver_webhooks`` after commit, retried with backoff."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    audit_seq = models.PositiveBigIntegerField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    # Set by the worker's claim, cleared with the outcome: an outcome is written only while the
    # row still carries the token of the batch that sent it.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
            models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_log_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="pending") | models.Q(next_attempt_at__isnull=False),
                name="webhook_delivery_pending_is_scheduled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → webhook {self.webhook_id} ({self.status})"
