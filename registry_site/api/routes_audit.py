"""The audit log, filtered: the same events the dashboard's audit page shows the caller."""

from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from approvals.selectors import audit_events, redact_lineage
from audit.models import AuditEvent
from core.rules import LOGIN
from models_app.names import name_key

from .helpers import paginate, requires
from .schemas import ERRORS, AuditFilters, AuditPage

router = Router(tags=["audit"])


def _moment(raw: str, field: str, *, end: bool) -> datetime:
    """An ISO-8601 date (the whole day, UTC) or date-time (UTC without an offset)."""
    raw = raw.strip()
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.max if end else time.min,
                                    tzinfo=timezone.UTC)  # fmt: skip
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            {field: [f"Give an ISO-8601 date or date-time, e.g. 2026-03-01 (got {raw[:40]!r})."]}
        ) from None
    return timezone.make_aware(when, timezone.UTC) if timezone.is_naive(when) else when


def _event_out(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "created_at": e.created_at,
        "actor": e.actor_username,
        "action": e.action,
        "model": e.model.name if e.model is not None else None,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "target_label": e.target_label,
        "before": e.before,
        "after": e.after,
        "reason": e.reason,
        "ip_address": e.ip_address,
        "hash": e.hash,
    }


@router.get("", response={200: AuditPage, **ERRORS}, url_name="audit")
@requires(LOGIN)
def list_events(request: HttpRequest, filters: Query[AuditFilters]):
    """Signed-in users: superusers see every event, others the events of models they may view.
    Newest first."""
    events = audit_events(
        request.user,
        actor=filters.actor or "",
        action=filters.action or "",
        since=_moment(filters.since, "since", end=False) if filters.since else None,
        until=_moment(filters.until, "until", end=True) if filters.until else None,
    )
    if filters.model:
        events = events.filter(model__name_key=name_key(filters.model))
    return paginate(
        request,
        events.select_related("model"),
        limit=filters.limit,
        page=filters.page,
        serialize=lambda rows: (_event_out(e) for e in redact_lineage(rows, request.user)),
    )
