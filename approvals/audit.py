"""The tamper-evident audit log: record() appends, verify_chain() checks.

Each event stores the hash of the previous event and its own SHA-256 over a canonical JSON
serialisation of its fields, so editing, deleting or inserting any row breaks the chain at a
place ``verify_chain`` reports. Appends are serialised: on PostgreSQL by a transaction-scoped
advisory lock, on SQLite by its single writer (transactions start IMMEDIATE).

``record`` must be called inside the transaction of the change it describes.
"""

import contextvars
import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from approvals.models import AuditEvent
from registry_site import sql

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_ID = 0x4155444954  # "AUDIT"

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


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_ID])


def _chain_head() -> tuple[int, str] | None:
    """(seq, hash) of the newest event: read on every change, so in hand-written SQL."""
    rows = sql.fetch(
        f"SELECT seq, hash FROM {sql.table(AuditEvent)} ORDER BY seq DESC LIMIT 1"  # noqa: S608
    )
    return rows[0] if rows else None


def record(
    *,
    actor,
    action: str,
    target=None,
    model=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event. ``target`` is any model instance (its type, id and str are kept)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction of the change")
    from approvals.webhooks import enqueue_for_event, subscribers_for_action  # (uses audit)

    # Everything that does not depend on the chain is prepared before taking its lock: the
    # lock is held until the transaction commits, and every change in the registry waits on it.
    model_id = model.pk if model is not None else None
    hooks = subscribers_for_action(action, model_id)
    # JSON round trip so the stored value and the hashed value are the same (dates, Decimals).
    event = AuditEvent(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=actor.get_username() if actor is not None else "(anonymous)",
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
    _lock_chain()
    last = _chain_head()
    event.created_at = timezone.now()  # under the lock: times follow the chain's order
    event.seq = (last[0] + 1) if last else 1
    event.prev_hash = last[1] if last else GENESIS_HASH
    event.hash = compute_hash(event)
    sql.insert([event])
    enqueue_for_event(event, hooks)  # the outbox: deliveries commit or roll back with the change
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
    """Walk the whole chain in order; report the first broken link."""
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
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None:
            progress(checked)
    return ChainReport(checked)
