"""The delivery worker: claim due deliveries, send each once, record the outcome.

Claiming is a short transaction that pushes the claimed rows' next attempt past a lease, so the
HTTP calls happen outside any transaction and a crashed worker's rows come back after the
lease. On PostgreSQL the claim uses ``SELECT … FOR UPDATE SKIP LOCKED``, so several workers
share the queue without sending a delivery twice; SQLite has one writer and plain ordering.

A subscription acts with its creator's authority, checked at send time rather than when it was
made: a model's delivery goes out only while its creator still holds manage on the model (or
is a superuser), a global one only while its creator is still staff or a superuser. Otherwise
the delivery fails for good without a request, with the reason in its log. The check costs one
query per batch, whatever its size.
"""

import http.client
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from approvals.models import WebhookDelivery
from approvals.webhooks import guard, sender
from models_app.access import Role, granted_pairs

log = logging.getLogger(__name__)

EXCERPT_CHARS = 2000  # of the response body, kept for the delivery log


@dataclass
class Summary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed

    def __str__(self) -> str:
        return (
            f"Attempted {self.attempted} deliveries: {self.delivered} delivered, "
            f"{self.retrying} to retry, {self.failed} failed for good."
        )


@dataclass
class Outcome:
    ok: bool
    status: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0


def backoff(attempts: int) -> timedelta:
    """Wait after the n-th failed attempt: base × 2^(n-1) (30 s, 1 min, 2 min, …)."""
    return timedelta(seconds=settings.REGISTRY_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1))


def _lease() -> timedelta:
    return timedelta(seconds=2 * settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS + 60)


def claim(limit: int, now: datetime) -> list[WebhookDelivery]:
    """Due deliveries, taken out of other workers' reach for the length of a lease."""
    with transaction.atomic():
        due = WebhookDelivery.objects.due(now).select_related("webhook__created_by")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        batch = list(due[:limit])
        if batch:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in batch]).update(
                next_attempt_at=now + _lease()
            )
    return batch


def unauthorized(batch: list[WebhookDelivery]) -> dict[int, str]:
    """Why each delivery whose subscription's creator lost the authority to receive it may
    not be sent, by delivery id (one query for the whole batch)."""
    hooks = {d.webhook for d in batch}
    ask = [
        h
        for h in hooks
        if h.model_id is not None
        and h.created_by is not None
        and h.created_by.is_active
        and not h.created_by.is_superuser
    ]
    managers = granted_pairs(Role.MANAGE, {h.created_by_id for h in ask}, {h.model_id for h in ask})
    reasons: dict[int, str] = {}
    for delivery in batch:
        hook, creator = delivery.webhook, delivery.webhook.created_by
        if creator is None or not creator.is_active:
            why = "its creator's account no longer exists or is deactivated"
        elif creator.is_superuser:
            continue
        elif hook.model_id is None:
            why = "its creator is no longer a superuser, which global webhooks need"
        elif (creator.pk, hook.model_id) in managers:
            continue
        else:
            why = "its creator no longer holds the manage role on the model"
        reasons[delivery.pk] = (
            f"Not sent: {why}. Someone who may manage it should recreate the webhook."
        )
    return reasons


def attempt(delivery: WebhookDelivery) -> Outcome:
    """One try: check the target (resolving it once), sign, POST. Never raises."""
    started = time.monotonic()
    timeout = settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS
    try:
        target = guard.check(delivery.webhook.url)
        body = sender.body_of(delivery.payload)
        headers = sender.headers_for(
            secret=delivery.webhook.secret,
            event=delivery.event,
            delivery_id=str(delivery.uuid),
            body=body,
            timestamp=int(time.time()),
        )
        response = sender.post(
            target,
            body,
            headers,
            timeout=timeout,
            max_bytes=settings.REGISTRY_WEBHOOK_MAX_RESPONSE_BYTES,
        )
    except guard.UnsafeTarget as e:
        return Outcome(ok=False, error=f"Refused: {e}", duration_ms=_ms(started))
    except TimeoutError as e:
        return Outcome(ok=False, error=f"Timed out: {e or timeout}", duration_ms=_ms(started))
    except (OSError, http.client.HTTPException) as e:
        reason = str(e) or type(e).__name__
        return Outcome(ok=False, error=f"Connection failed: {reason}", duration_ms=_ms(started))
    excerpt = response.body[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    if response.truncated:
        excerpt += f"\n[response cut at {settings.REGISTRY_WEBHOOK_MAX_RESPONSE_BYTES} bytes]"
    outcome = Outcome(
        ok=200 <= response.status < 300,
        status=response.status,
        excerpt=excerpt,
        duration_ms=_ms(started),
    )
    if 300 <= response.status < 400:
        outcome.error = (
            f"HTTP {response.status}: redirects are not followed "
            f"(Location: {response.location or 'none'}); point the webhook at the final URL."
        )
    elif not outcome.ok:
        outcome.error = f"HTTP {response.status} from the receiver."
    return outcome


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def record(
    delivery: WebhookDelivery, outcome: Outcome, now: datetime, *, final: bool = False
) -> str:
    """Store the attempt; schedule a retry or settle the delivery (``final``: no retry).
    Returns the new status."""
    attempts = delivery.attempts + 1
    S = WebhookDelivery.Status
    if outcome.ok:
        status, next_at = S.DELIVERED, None
    elif final or attempts >= settings.REGISTRY_WEBHOOK_MAX_ATTEMPTS:
        status, next_at = S.FAILED, None
    else:
        status, next_at = S.PENDING, now + backoff(attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=attempts,
        next_attempt_at=next_at,
        last_attempt_at=now,
        response_status=outcome.status,
        response_excerpt=outcome.excerpt,
        duration_ms=outcome.duration_ms,
        last_error=outcome.error,
    )
    return status


def deliver_due(*, limit: int = 100) -> Summary:
    """Send every delivery that is due now (in batches of ``limit``) and report."""
    summary = Summary()
    seen: set[int] = set()
    while True:
        batch = [d for d in claim(limit, timezone.now()) if d.pk not in seen]
        if not batch:
            return summary
        refused = unauthorized(batch)
        for delivery in batch:
            seen.add(delivery.pk)
            if delivery.pk in refused:
                outcome = Outcome(ok=False, error=refused[delivery.pk])
                status = record(delivery, outcome, timezone.now(), final=True)
            else:
                outcome = attempt(delivery)
                status = record(delivery, outcome, timezone.now())
            if status == WebhookDelivery.Status.DELIVERED:
                summary.delivered += 1
            elif status == WebhookDelivery.Status.FAILED:
                summary.failed += 1
                log.warning("webhook delivery %s failed for good: %s", delivery.uuid, outcome.error)
            else:
                summary.retrying += 1
                log.info("webhook delivery %s will be retried: %s", delivery.uuid, outcome.error)
