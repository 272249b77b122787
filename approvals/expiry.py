"""Approvals that expire: when a model's policy sets ``approval_valid_days``, an approved
version whose approval (``ModelVersion.decided_at``: when it was approved or last revalidated)
is older than that is **revalidation due**.

The flag is computed when read, from the policy and that time, so every page and API is right
without a scheduled job; ``approval_expiry`` is the one place that decides it, and every surface
(model page, review inbox, resolve endpoint, JSON version detail, MLflow tags) asks it.
``manage.py mark_revalidation_due`` only records the audit event (and so the webhook) once per
approval.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, QuerySet
from django.utils import timezone

from approvals.models import ReviewPolicy
from models_app.models import ModelVersion


@dataclass(frozen=True)
class Expiry:
    """``expires_at``: when the approval stops being valid (None: it does not expire, or the
    version is not approved); ``due``: that moment has passed."""

    expires_at: datetime | None = None
    due: bool = False


NEVER = Expiry()


def approval_expiry(
    *,
    status: str,
    approved_at: datetime | None,
    valid_days: int | None,
    now: datetime | None = None,
) -> Expiry:
    """Whether an approval given at ``approved_at`` is due for revalidation at ``now``."""
    if not valid_days or status != ModelVersion.Status.APPROVED or approved_at is None:
        return NEVER
    expires_at = approved_at + timedelta(days=valid_days)
    return Expiry(expires_at, (now or timezone.now()) >= expires_at)


def expiry_of(version: ModelVersion, valid_days: int | None, now: datetime | None = None) -> Expiry:
    return approval_expiry(
        status=version.status, approved_at=version.decided_at, valid_days=valid_days, now=now
    )


def valid_days_of(model) -> int | None:
    """The model's ``approval_valid_days`` (None: approvals do not expire), in one query."""
    return (
        ReviewPolicy.objects.filter(model=model)
        .values_list("approval_valid_days", flat=True)
        .first()
    )


def due_among(versions: QuerySet[ModelVersion], now: datetime | None = None) -> list[ModelVersion]:
    """The versions of ``versions`` due for revalidation at ``now``, oldest approval first, in
    one query: approved ones whose model's policy lets approvals expire are read with their
    ``valid_days``, and ``approval_expiry`` decides (the flag has one definition)."""
    now = now or timezone.now()
    candidates = (
        versions.filter(
            status=ModelVersion.Status.APPROVED,
            decided_at__isnull=False,
            model__review_policy__approval_valid_days__isnull=False,
        )
        .annotate(valid_days=F("model__review_policy__approval_valid_days"))
        .order_by("decided_at", "pk")
    )
    due = []
    for v in candidates:
        v.approval_expiry = expiry_of(v, v.valid_days, now)
        if v.approval_expiry.due:
            due.append(v)
    return due
