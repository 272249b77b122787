"""The delivery worker: claim due deliveries, send each once, record the outcome.

Claiming is a short transaction that gives the claimed rows a claim token and pushes their next
attempt past a lease, so the HTTP calls happen outside any transaction and a crashed worker's
rows come back after the lease. On PostgreSQL the claim uses ``SELECT … FOR UPDATE SKIP
LOCKED``, so several workers share the queue; the claim itself is a conditional UPDATE, so on
any database only one worker takes a row.

One delivery is never sent twice:

- every attempt (resolving, each address tried, connect, TLS, send, read) ends by one deadline,
  ``REGISTRY_WEBHOOK_TIMEOUT_SECONDS`` after it starts;
- the lease covers the batch's worst case (every delivery to one host, ``PER_HOST`` at a time)
  plus a margin, and an attempt starts only while the lease has room for a whole attempt left;
  what has no room is given back, due at once, for the next batch or another worker;
- an outcome is written only while the row still carries this batch's claim token (a
  conditional UPDATE); a lost claim is logged and neither recorded nor retried.

A batch is sent by ``REGISTRY_WEBHOOK_CONCURRENCY`` threads, at most ``REGISTRY_WEBHOOK_PER_HOST``
requests at a time to one host, and takes at most ``REGISTRY_WEBHOOK_PER_WEBHOOK`` deliveries of
one subscription, so one subscription's backlog or one slow receiver cannot hold up the others.
The threads only talk HTTP; outcomes are written by the calling thread.

A subscription acts with its creator's authority, checked at send time rather than when it was
made: a model's delivery goes out only while its creator still holds manage on the model (or
is a superuser), a global one only while its creator is still staff or a superuser. Otherwise
the delivery fails for good without a request, with the reason in its log. The check costs one
query per batch, whatever its size.
"""

import http.client
import logging
import math
import time
import uuid
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from approvals.models import WebhookDelivery
from approvals.webhooks import guard, sender
from models_app.access import Role, granted_pairs

log = logging.getLogger(__name__)

EXCERPT_CHARS = 2000  # of the response body, kept for the delivery log
LEASE_MARGIN_SECONDS = 30  # on top of the batch's worst case: writing outcomes, slow clocks
START_MARGIN_SECONDS = 2  # an attempt starts only with its timeout plus this left on the lease


@dataclass
class Summary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    postponed: int = 0  # given back unsent: the lease had no room left for them

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed

    def __str__(self) -> str:
        line = (
            f"Attempted {self.attempted} deliveries: {self.delivered} delivered, "
            f"{self.retrying} to retry, {self.failed} failed for good."
        )
        if self.postponed:
            line += f" {self.postponed} postponed to the next batch."
        return line


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


def _lease(size: int) -> timedelta:
    """How long a batch of ``size`` keeps its rows: every delivery to one host, ``PER_HOST`` (or
    ``CONCURRENCY``, if fewer) at a time, each taking its whole timeout, plus a margin."""
    parallel = min(settings.REGISTRY_WEBHOOK_CONCURRENCY, settings.REGISTRY_WEBHOOK_PER_HOST)
    rounds = math.ceil(max(size, 1) / max(parallel, 1))
    return timedelta(
        seconds=rounds * settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
    )


CLAIM_ROUNDS = 5  # passes over rows that other workers are claiming at the same moment


def _fair_share(due_by: datetime, passed_over: set[int], limit: int) -> list[int]:
    """The oldest ``PER_WEBHOOK`` due deliveries of each subscription, then the oldest
    ``limit`` of those (ids), leaving out rows another worker is claiming."""
    ranked = (
        WebhookDelivery.objects.due(due_by)
        .exclude(pk__in=passed_over)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("webhook_id")],
                order_by=[F("next_attempt_at").asc(), F("pk").asc()],
            )
        )
        .filter(rank__lte=settings.REGISTRY_WEBHOOK_PER_WEBHOOK)
    )
    return list(ranked.values_list("pk", flat=True)[:limit])


def claim(limit: int, now: datetime, *, due_by: datetime | None = None) -> list[WebhookDelivery]:
    """Due deliveries (due by ``due_by``, default ``now``), at most ``PER_WEBHOOK`` of one
    subscription, taken out of other workers' reach for the length of a lease. Each returned
    row carries this claim's token; its ``next_attempt_at`` is the end of the lease."""
    due_by = due_by or now
    token = uuid.uuid4()
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        # Row locks cannot be taken in the ranking query (no FOR UPDATE with window functions):
        # rank, lock what is free, and rank again without what another worker holds.
        pks: list[int] = []
        passed_over: set[int] = set()
        for _round in range(CLAIM_ROUNDS):
            new = [pk for pk in _fair_share(due_by, passed_over, limit) if pk not in pks]
            if not new:
                break
            free = WebhookDelivery.objects.due(due_by).filter(pk__in=new)
            if skip_locked:
                free = free.select_for_update(skip_locked=True, of=("self",))
            got = list(free.values_list("pk", flat=True))
            pks += got
            passed_over |= set(new) - set(got)
            if len(got) == len(new):
                break
        if not pks:
            return []
        # Conditional on still being due: a row another worker took in between is not taken.
        WebhookDelivery.objects.filter(
            pk__in=pks, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=due_by
        ).update(claim_token=token, next_attempt_at=now + _lease(len(pks)))
        return list(
            WebhookDelivery.objects.filter(pk__in=pks, claim_token=token)
            .select_related("webhook__created_by")
            .order_by("pk")
        )


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
    """One try: check the target (resolving it once), sign, POST, all within one timeout.
    Never raises; runs no query (it is called from the sending threads)."""
    started = time.monotonic()
    timeout = settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS
    deadline = started + timeout
    try:
        target = guard.check(delivery.webhook.url, deadline=deadline)
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
            deadline=deadline,
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
) -> str | None:
    """Store the attempt; schedule a retry or settle the delivery (``final``: no retry).
    Returns the new status, or None when this worker no longer holds the claim (nothing is
    written: whoever took the row over owns its outcome)."""
    attempts = delivery.attempts + 1
    S = WebhookDelivery.Status
    if outcome.ok:
        status, next_at = S.DELIVERED, None
    elif final or attempts >= settings.REGISTRY_WEBHOOK_MAX_ATTEMPTS:
        status, next_at = S.FAILED, None
    else:
        status, next_at = S.PENDING, now + backoff(attempts)
    written = WebhookDelivery.objects.filter(
        pk=delivery.pk, claim_token=delivery.claim_token, status=S.PENDING
    ).update(
        status=status,
        attempts=attempts,
        next_attempt_at=next_at,
        last_attempt_at=now,
        response_status=outcome.status,
        response_excerpt=outcome.excerpt,
        duration_ms=outcome.duration_ms,
        last_error=outcome.error,
        claim_token=None,
    )
    if not written:
        log.warning(
            "webhook delivery %s: claim lost before its outcome was written (%s); not recorded",
            delivery.uuid, outcome.error or f"HTTP {outcome.status}",
        )  # fmt: skip
        return None
    return status


def release(delivery: WebhookDelivery, now: datetime) -> bool:
    """Give an unsent delivery back, due at once (for the next batch or another worker)."""
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery.pk, claim_token=delivery.claim_token, status=WebhookDelivery.Status.PENDING
        ).update(next_attempt_at=now, claim_token=None)
    )


def _count(summary: Summary, delivery: WebhookDelivery, outcome: Outcome, status) -> None:
    if status is None:
        return
    if status == WebhookDelivery.Status.DELIVERED:
        summary.delivered += 1
    elif status == WebhookDelivery.Status.FAILED:
        summary.failed += 1
        log.warning("webhook delivery %s failed for good: %s", delivery.uuid, outcome.error)
    else:
        summary.retrying += 1
        log.info("webhook delivery %s will be retried: %s", delivery.uuid, outcome.error)


def _host(delivery: WebhookDelivery) -> str:
    try:
        return (urlsplit(delivery.webhook.url).hostname or "").lower()
    except ValueError:
        return ""


def _attempt_in_thread(delivery: WebhookDelivery) -> Outcome:
    try:
        return attempt(delivery)
    finally:
        connections.close_all()  # attempt runs no query; this thread must not keep one open


def _has_room(delivery: WebhookDelivery) -> bool:
    """Whether a whole attempt still ends before this batch's lease does."""
    room = timedelta(seconds=settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS + START_MARGIN_SECONDS)
    return timezone.now() + room <= delivery.next_attempt_at


def send_batch(batch: list[WebhookDelivery], summary: Summary) -> None:
    """Send a claimed batch concurrently (``CONCURRENCY`` threads, ``PER_HOST`` per host) and
    record each outcome from this thread as it arrives."""
    refused = unauthorized(batch)
    waiting: dict[str, deque[WebhookDelivery]] = {}
    for delivery in batch:
        if delivery.pk in refused:
            outcome = Outcome(ok=False, error=refused[delivery.pk])
            _count(
                summary, delivery, outcome, record(delivery, outcome, timezone.now(), final=True)
            )
        else:
            waiting.setdefault(_host(delivery), deque()).append(delivery)
    threads, per_host = settings.REGISTRY_WEBHOOK_CONCURRENCY, settings.REGISTRY_WEBHOOK_PER_HOST
    running: dict[Future, tuple[str, WebhookDelivery]] = {}
    busy: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook") as pool:
        while waiting or running:
            for host in list(waiting):
                queue = waiting[host]
                while queue and busy[host] < per_host and len(running) < threads:
                    delivery = queue.popleft()
                    if not _has_room(delivery):
                        if release(delivery, timezone.now()):
                            summary.postponed += 1
                        continue
                    running[pool.submit(_attempt_in_thread, delivery)] = (host, delivery)
                    busy[host] += 1
                if not queue:
                    del waiting[host]
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                host, delivery = running.pop(future)
                busy[host] -= 1
                outcome = future.result()
                _count(summary, delivery, outcome, record(delivery, outcome, timezone.now()))


def deliver_due(*, limit: int = 100) -> Summary:
    """Send every delivery that was due when this call started (in batches of ``limit``) and
    report. Retries and postponed deliveries come due later, for the next call."""
    summary = Summary()
    started = timezone.now()
    while True:
        batch = claim(limit, timezone.now(), due_by=started)
        if not batch:
            return summary
        send_batch(batch, summary)
