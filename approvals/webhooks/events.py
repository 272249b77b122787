"""Which audit actions become webhook events, their payloads, and the outbox write.

``enqueue_for_event`` is subscribed to the audit log (``SUBSCRIBER``, in
``ApprovalsConfig.ready``): ``audit.chain.record`` calls it right after the event is saved, so the
deliveries are written in the transaction of the change: they exist if and only if the change
committed (a transactional outbox). Nothing is sent here; the worker sends committed rows.
"""

import uuid

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from approvals.models import Webhook, WebhookDelivery
from audit.chain import Subscriber
from audit.models import AuditEvent
from core import sql
from models_app.models import ModelVersion

PING = "ping"

# Webhook event names are the audit actions they come from. Order: how the form lists them.
EVENTS: dict[str, str] = {
    "version.created": "A version is registered",
    "version.submitted": "A version is submitted for review",
    "version.withdrawn": "A submission is withdrawn",
    "review.approved": "A reviewer approves",
    "review.rejected": "A reviewer rejects (the version is rejected)",
    "review.gate_override": "A reviewer approves despite failing gates",
    "version.approved": "A version is approved (the quorum is reached)",
    "version.revalidation_due": "A version's approval has expired (revalidation due)",
    "version.revalidated": "A version's approval is renewed by a revalidation round",
    "version.revalidation_rejected": "A version is rejected in a revalidation round",
    "version.archived": "A version is archived",
    "version.deleted": "A draft version is deleted",
    "alias.moved": "An alias moves (production, staging, …)",
    "alias.rolled_back": "An alias is rolled back",
    "alias.removed": "An alias is removed",
    "comment.added": "A comment is added",
    "model.deleted": "The model is deleted",
}
EVENT_FOR_ACTION: dict[str, str] = {action: action for action in EVENTS}


def _url(path: str) -> str:
    return settings.SITE_URL + path


def _model_part(model) -> dict | None:
    if model is None:
        return None
    return {
        "id": model.pk,
        "name": model.name,
        "slug": model.slug,
        "url": _url(reverse("models_app:model_detail", args=[model.slug])),
    }


def _version_part(event: AuditEvent, model) -> dict | None:

    if event.target_type != ModelVersion._meta.model_name or model is None:
        return None
    row = ModelVersion.objects.filter(pk=event.target_id).values("id", "number", "status").first()
    if row is None:
        return {"id": int(event.target_id), "number": None, "status": None, "url": None}
    return {
        **row,
        "url": _url(reverse("models_app:version_detail", args=[model.slug, row["number"]])),
    }


def payload_for(event: AuditEvent, name: str) -> dict:
    """The JSON body of an event (the same for every subscription it goes to)."""
    payload = {
        "id": str(uuid.uuid4()),
        "event": name,
        "created_at": event.created_at.isoformat(),
        "model": _model_part(event.model),
        "actor": event.actor_username,
        "audit_seq": event.seq,
    }
    version = _version_part(event, event.model)
    if version is not None:
        payload["version"] = version
    if name.startswith("alias."):
        before, after = event.before or {}, event.after or {}
        payload["alias"] = {
            "name": after.get("alias") or before.get("alias"),
            "version": after.get("version"),
            "previous_version": before.get("version"),
        }
    if name == "version.revalidation_due" and event.after:
        payload["approval"] = {
            "approved_at": event.after.get("approved_at"),
            "expires_at": event.after.get("approval_expires_at"),
            "valid_days": event.after.get("approval_valid_days"),
        }
    if name == "comment.added" and event.after:
        payload["comment"] = {"id": event.after.get("comment"), "metric": event.after.get("metric")}
    if event.reason:
        payload["reason"] = event.reason
    return payload


def subscribers(model_id: int | None, name: str) -> list[Webhook]:
    """Active subscriptions of this model, and global ones, that want this event."""
    # Asked inside the transaction of every change that some subscription might want, so it is
    # one hand-written SELECT (core/sql.py).
    rows = sql.fetch(
        f"SELECT {sql.columns(Webhook, 'w')} FROM {sql.table(Webhook)} w "  # noqa: S608 (sql.py)
        "WHERE w.active = %s AND (w.model_id IS NULL OR w.model_id = %s) ORDER BY w.id",
        [True, model_id],
    )
    return [hook for hook in (sql.instance(Webhook, row) for row in rows) if hook.wants(name)]


def enqueue_for_event(event: AuditEvent) -> list:
    """Write one pending delivery per subscription that wants this event, in the caller's
    transaction (``audit.chain.record`` calls it when some subscription might)."""
    name = EVENT_FOR_ACTION.get(event.action)
    if name is None:
        return []
    hooks = subscribers(event.model_id, name)
    if not hooks:
        return []
    payload = payload_for(event, name)
    return WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uuid=uuid.uuid4(),
            webhook=hook,
            event=name,
            payload=payload,
            audit_seq=event.seq,
            created_at=event.created_at,
            next_attempt_at=event.created_at,
        )
        for hook in hooks
    )


def ping_payload(webhook: Webhook, actor) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "event": PING,
        "created_at": timezone.now().isoformat(),
        "model": _model_part(webhook.model),
        "actor": actor.get_username(),
        "audit_seq": None,
        "webhook": {"id": webhook.pk, "events": webhook.events},
    }


def _wants_sql() -> str:
    return (
        f"EXISTS (SELECT 1 FROM {sql.table(Webhook)} w WHERE w.active = %s "  # noqa: S608
        "AND (w.model_id IS NULL OR w.model_id = %s))"
    )


# Whether any active subscription could want an event of a model is asked in the statement
# that moves the audit chain's head: without subscriptions there is no lookup at all.
SUBSCRIBER = Subscriber(
    wants=_wants_sql(), params=lambda model_id: [True, model_id], receive=enqueue_for_event
)
