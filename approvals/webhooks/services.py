"""Writes on subscriptions and deliveries: each one transaction with its audit event.

Who may call them is checked here too (manage role on the model; staff for global
subscriptions), because views are not the only callers. Test pings and redeliveries are
limited per subscription (``REGISTRY_WEBHOOK_MANUAL_PER_MINUTE``), counted from the deliveries
themselves: a refusal (``RateLimited``, 429) writes nothing.
"""

import math
import secrets
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from approvals.models import Webhook, WebhookDelivery
from approvals.webhooks import guard
from approvals.webhooks.events import EVENTS, PING, ping_payload
from audit import chain
from core.errors import RateLimited
from models_app.access import Role, require

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MIN_SECRET_LENGTH = 16
MANUAL_WINDOW = timedelta(minutes=1)


def _require(actor, model) -> None:
    """Manage role on the model; global subscriptions (``model`` None), which receive every
    model's events: superusers only (staff are not enough)."""
    if model is not None:
        require(actor, model, Role.MANAGE)
    elif not (actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only superusers may manage global webhooks.")


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    try:
        guard.parse_url(url)
    except ValidationError as e:
        raise ValidationError({"url": e.messages}) from None
    deadline = time.monotonic() + settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS
    try:
        guard.check(url, deadline=deadline)
    except guard.UnsafeTarget as e:
        raise ValidationError({"url": [str(e)]}) from None
    except TimeoutError:
        raise ValidationError(
            {"url": ["The host name did not resolve in time; check it, or try again later."]}
        ) from None
    return url


def _clean_events(events) -> list[str]:
    chosen = [e for e in dict.fromkeys(events or []) if e]
    if not chosen:
        raise ValidationError({"events": ["Pick at least one event, or all events."]})
    unknown = [e for e in chosen if e != Webhook.ALL_EVENTS and e not in EVENTS]
    if unknown:
        raise ValidationError({"events": [f"Unknown event {unknown[0]!r}."]})
    return [Webhook.ALL_EVENTS] if Webhook.ALL_EVENTS in chosen else chosen


def _clean_secret(secret: str) -> str:
    secret = (secret or "").strip()
    if not secret:
        return new_secret()
    if not MIN_SECRET_LENGTH <= len(secret) <= 200 or not secret.isprintable() or " " in secret:
        raise ValidationError(
            {
                "secret": [
                    f"A secret is {MIN_SECRET_LENGTH} to 200 printable characters without "
                    "spaces; leave it empty to have one generated."
                ]
            }
        )
    return secret


def _shown_url(url: str) -> str:
    """The URL for the audit log: scheme and host only. Paths often carry tokens, and the log
    is readable by every viewer of the model."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _state(hook: Webhook) -> dict:
    return {"url": _shown_url(hook.url), "events": hook.events, "active": hook.active}


def webhook_create(
    *, actor, model=None, url: str, events: list[str], secret: str = "", active: bool = True
) -> tuple[Webhook, str]:
    """Subscribe ``url`` to events of ``model`` (or of every model when None, staff only).
    Returns the subscription and its secret, to be shown once."""
    _require(actor, model)
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for field, clean, value in (
        ("url", _clean_url, url), ("events", _clean_events, events),
        ("secret", _clean_secret, secret),
    ):  # fmt: skip
        try:
            cleaned[field] = clean(value)
        except ValidationError as e:
            errors.update(e.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        hook = Webhook.objects.create(model=model, created_by=actor, active=active, **cleaned)
        chain.record(
            actor=actor, action="webhook.created", target=hook, model=model, after=_state(hook)
        )
    return hook, cleaned["secret"]


def webhook_update(
    *,
    actor,
    webhook: Webhook,
    url: str,
    events: list[str],
    active: bool,
    rotate_secret: bool = False,
) -> tuple[Webhook, str | None]:
    """Change a subscription; returns it and the new secret when rotated (shown once)."""
    _require(actor, webhook.model)
    errors: dict[str, list[str]] = {}
    url = (url or "").strip()
    try:
        # An unchanged URL is not re-resolved: editing events must work while DNS is down.
        if url != webhook.url:
            url = _clean_url(url)
    except ValidationError as e:
        errors.update(e.message_dict)
    try:
        events = _clean_events(events)
    except ValidationError as e:
        errors.update(e.message_dict)
    if errors:
        raise ValidationError(errors)
    secret = new_secret() if rotate_secret else None
    with transaction.atomic():
        locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
        before = _state(locked)
        locked.url, locked.events, locked.active = url, events, active
        if secret:
            locked.secret = secret
        locked.save()
        after = _state(locked) | ({"secret": "rotated"} if secret else {})
        chain.record(
            actor=actor, action="webhook.updated", target=locked, model=locked.model,
            before=before, after=after,
        )  # fmt: skip
    return locked, secret


def webhook_delete(*, actor, webhook: Webhook) -> None:
    """Remove a subscription with its delivery log (the audit log keeps that it existed)."""
    _require(actor, webhook.model)
    with transaction.atomic():
        locked = Webhook.objects.select_for_update().filter(pk=webhook.pk).first()
        if locked is None:
            return
        chain.record(
            actor=actor, action="webhook.deleted", target=locked, model=locked.model,
            before=_state(locked),
        )  # fmt: skip
        locked.delete()


def _within_manual_limit(webhook: Webhook, now) -> None:
    """Lock the subscription and refuse a test ping or redelivery beyond the per-minute limit
    (concurrent requests for one subscription wait for each other's count)."""
    list(Webhook.objects.select_for_update().filter(pk=webhook.pk).values_list("pk", flat=True))
    limit = settings.REGISTRY_WEBHOOK_MANUAL_PER_MINUTE
    recent = WebhookDelivery.objects.filter(
        Q(event=PING) | Q(redelivery_of__isnull=False),
        webhook=webhook,
        created_at__gt=now - MANUAL_WINDOW,
    ).aggregate(count=Count("pk"), oldest=Min("created_at"))
    if recent["count"] < limit:
        return
    wait = max(1, math.ceil((recent["oldest"] + MANUAL_WINDOW - now).total_seconds()))
    raise RateLimited(
        f"This webhook was sent {limit} test pings or redeliveries in the last minute, the "
        f"most allowed; try again in {wait} s. Nothing was queued.",
        retry_after=wait,
    )


def webhook_send_test(*, actor, webhook: Webhook) -> WebhookDelivery:
    """Queue a ``ping`` for this subscription alone (whatever events it subscribes to).
    Raises RateLimited beyond ``REGISTRY_WEBHOOK_MANUAL_PER_MINUTE``."""
    _require(actor, webhook.model)
    now = timezone.now()
    with transaction.atomic():
        _within_manual_limit(webhook, now)
        delivery = WebhookDelivery.objects.create(
            uuid=uuid.uuid4(), webhook=webhook, event=PING, payload=ping_payload(webhook, actor),
            created_at=now, next_attempt_at=now,
        )  # fmt: skip
        chain.record(
            actor=actor, action="webhook.tested", target=webhook, model=webhook.model,
            after={"delivery": str(delivery.uuid)},
        )  # fmt: skip
    return delivery


def delivery_redeliver(*, actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue a copy of a delivery: same payload (receivers may de-duplicate on its ``id``),
    new delivery id, a fresh set of attempts. Raises RateLimited beyond
    ``REGISTRY_WEBHOOK_MANUAL_PER_MINUTE`` (test pings and redeliveries of one subscription)."""
    _require(actor, delivery.webhook.model)
    now = timezone.now()
    with transaction.atomic():
        _within_manual_limit(delivery.webhook, now)
        copy = WebhookDelivery.objects.create(
            uuid=uuid.uuid4(), webhook=delivery.webhook, event=delivery.event,
            payload=delivery.payload, audit_seq=delivery.audit_seq, redelivery_of=delivery,
            created_at=now, next_attempt_at=now,
        )  # fmt: skip
        chain.record(
            actor=actor, action="webhook.redelivered", target=delivery.webhook,
            model=delivery.webhook.model,
            after={"delivery": str(delivery.uuid), "copy": str(copy.uuid), "event": copy.event},
        )  # fmt: skip
    return copy
