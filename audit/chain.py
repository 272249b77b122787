"""The tamper-evident audit log: record() appends, verify_chain() checks.

Each event stores the hash of the previous event and its own SHA-256 over a canonical JSON
serialisation of its fields, so editing, deleting or inserting any row breaks the chain at a
place ``verify_chain`` reports. The newest link is also kept in a row of its own
(``AuditChainHead``), which appends move under its row lock, one after the other (SQLite has a
single writer anyway); removing the newest events is then detected too.

``record`` must be called inside the transaction of the change it describes.
"""

import contextvars
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent
from core import sql

GENESIS_HASH = "0" * 64

# The address of the request being served, set by AuditContextMiddleware.
current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_current_ip", default=None
)


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "model_id": event.model_id,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "ip_address": event.ip_address,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


HEAD_ID = 1  # the one row of AuditChainHead


@dataclass(frozen=True)
class Subscriber:
    """Another app that wants to act on some events in the transaction that appends them (the
    webhooks' outbox, say), without this app knowing it.

    ``wants`` is an SQL boolean expression, asked in the statement that moves the chain head
    (under its lock, so it sees what is committed when the event is appended; one round trip
    for the head and every subscriber): may this subscriber want an event of this model?
    ``params(model_id)`` gives its parameters. Where it answers yes, ``receive(event)`` runs
    after the event is written, in the same transaction."""

    wants: str
    params: Callable[[int | None], list]
    receive: Callable[[AuditEvent], None]


_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Called from an AppConfig.ready(); subscribing twice is a no-op."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def head_step(model_id: int | None) -> tuple[str, list]:
    """The UPDATE (SQL, parameters) that moves the chain head on by one for an event of model
    ``model_id``, returning the new event's seq, the hash it follows, and each subscriber's
    ``wants`` answer.

    It keeps the head row locked until the transaction ends, so appends queue here; on
    PostgreSQL a transaction that waited reads the row as the one before it committed it. A
    caller may run it inside a statement of its own (``sql.insert_numbered(along=…)``) and
    hand its row to ``record(head=…)``."""
    wants = "".join(f", ({s.wants})" for s in _subscribers)
    params = [p for s in _subscribers for p in s.params(model_id)]
    step = (
        f"UPDATE {sql.table(AuditChainHead)} SET seq = seq + 1 WHERE id = %s "  # noqa: S608
        f"RETURNING seq, hash{wants}"
    )
    return step, [HEAD_ID, *params]


def _advance_head(model_id: int | None) -> tuple:
    """Run head_step; where there is no head row yet, start one at the newest event."""
    rows = sql.fetch(*head_step(model_id))
    if not rows:  # no head row (the test runner empties every table): start at the newest event
        head, events = sql.table(AuditChainHead), sql.table(AuditEvent)
        sql.execute(
            f"INSERT INTO {head} (id, seq, hash) "  # noqa: S608 (core/sql.py)
            f"SELECT %s, COALESCE(MAX(seq), 0), COALESCE((SELECT hash FROM {events} "
            f"ORDER BY seq DESC LIMIT 1), %s) FROM {events} "
            "WHERE 1 = 1 ON CONFLICT (id) DO NOTHING",  # (WHERE: SQLite's parser needs one)
            [HEAD_ID, GENESIS_HASH],
        )
        rows = sql.fetch(*head_step(model_id))
    return rows[0]


@dataclass(frozen=True)
class _Scheduled:
    label: str


# The actor of what the registry does by itself, on a schedule (``manage.py`` jobs run by cron
# or the webhook worker), with no person behind it: ``record(actor=SCHEDULED, ...)`` stores no
# user and this label as the name, which the audit page, its CSV, the API and the version
# page's timeline show as they show a username. No username can be confused with it (Django's
# allow no spaces or brackets). ``actor=None`` stays for a visitor who is not signed in.
SCHEDULED = _Scheduled("registry (scheduled)")
ANONYMOUS = "(anonymous)"


def _actor_name(actor) -> str:
    if actor is None:
        return ANONYMOUS
    if isinstance(actor, _Scheduled):
        return actor.label
    return actor.get_username()


def record(
    *,
    actor,
    action: str,
    target=None,
    model=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    head: tuple | None = None,
) -> AuditEvent:
    """Append one event. ``target`` is any model instance (its type, id and str are kept).
    ``actor``: the user, ``None`` for a visitor not signed in, or ``SCHEDULED``.

    ``head``: the row ``head_step(model's id)`` returned in this transaction, when the caller
    moved the head itself; moved here otherwise."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction of the change")

    # Everything that does not depend on the chain is prepared before taking its lock (unless
    # the caller took it already): the lock is held until the transaction commits, and every
    # change in the registry waits on it.
    # JSON round trip so the stored value and the hashed value are the same (dates, Decimals).
    event = AuditEvent(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_username=_actor_name(actor),
        action=action,
        model=model,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:300] if target is not None else "",
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
        ip_address=current_ip.get(),
    )
    if head is None:
        head = _advance_head(event.model_id)
    event.seq, event.prev_hash, *wanted = head
    event.created_at = timezone.now()  # under the head's lock: times follow the chain's order
    event.hash = compute_hash(event)
    head_moves = f"UPDATE {sql.table(AuditChainHead)} SET hash = %s WHERE id = %s"  # noqa: S608
    sql.insert([event], along=(head_moves, [event.hash, HEAD_ID]))
    for subscriber, wants in zip(_subscribers, wanted, strict=True):
        if wants:
            subscriber.receive(event)
    return event


def _jsonable(value):
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(*, batch_size: int = 2000, progress=None) -> ChainReport:
    """Walk the whole chain in order; report the first broken link, or newest events missing
    (the chain head is read first: events appended meanwhile come after it)."""
    head = AuditChainHead.objects.filter(pk=HEAD_ID).values_list("seq", "hash").first()
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainReport(
                checked, expected_seq, f"event #{expected_seq} is missing (next is #{event.seq})"
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                checked, event.seq, f"event #{event.seq} does not follow #{event.seq - 1}"
            )
        if compute_hash(event) != event.hash:
            return ChainReport(checked, event.seq, f"event #{event.seq} was modified")
        if head is not None and event.seq == head[0] and event.hash != head[1]:
            return ChainReport(
                checked, event.seq, f"event #{event.seq} is not the one the chain head names"
            )
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None:
            progress(checked)
    if head is not None and head[0] >= expected_seq:
        return ChainReport(
            checked,
            expected_seq,
            f"events #{expected_seq} to #{head[0]} are missing (the chain head is at #{head[0]})",
        )
    return ChainReport(checked)
