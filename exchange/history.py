"""Audit history across registries.

An archive carries the source registry's audit events exactly as they were (ids included), so
each event's hash can be recomputed with audit.chain.compute_hash. On import they are kept
in ImportedAuditEvent, never edited, and anchored in this registry's own chain by one
``registry.imported`` event that records how many there were and the hash of the last one.
``verify_imported()`` re-checks every imported batch against its anchor.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from audit.chain import GENESIS_HASH, compute_hash
from audit.models import AuditEvent
from exchange.models import ImportedAuditEvent, RegistryImport


class ChainProblem(Exception):
    """The exported audit history does not verify; the message names the event."""


def as_event(record: dict) -> SimpleNamespace:
    """An exported event record as an object compute_hash can read."""
    try:
        created_at = datetime.fromisoformat(record["created_at"])
    except (TypeError, ValueError, KeyError):
        raise ChainProblem(f"audit event #{record.get('seq')} has no valid created_at") from None
    return SimpleNamespace(**{**record, "created_at": created_at})


@dataclass
class ChainSummary:
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = ""


class ChainVerifier:
    """Checks exported events one at a time (so a long history is never held in memory):
    every hash recomputes; a full export is one unbroken chain from the first event; a
    per-model export links wherever two events are consecutive."""

    def __init__(self, scope: str):
        self.scope = scope
        self.previous = None
        self.summary = ChainSummary()

    def feed(self, record: dict) -> None:
        event = as_event(record)
        seq, previous = event.seq, self.previous
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ChainProblem(f"audit event {seq!r} has no valid sequence number")
        if compute_hash(event) != event.hash:
            raise ChainProblem(f"audit event #{seq} ({event.action}) was modified")
        if self.scope == "full":
            expected = 1 if previous is None else previous.seq + 1
            if seq != expected:
                raise ChainProblem(f"audit event #{expected} is missing (next is #{seq})")
            expected_prev = GENESIS_HASH if previous is None else previous.hash
            if event.prev_hash != expected_prev:
                raise ChainProblem(f"audit event #{seq} does not follow #{seq - 1}")
        elif previous is not None:
            if seq <= previous.seq:
                raise ChainProblem(f"audit event #{seq} is out of order")
            if seq == previous.seq + 1 and event.prev_hash != previous.hash:
                raise ChainProblem(f"audit event #{seq} does not follow #{seq - 1}")
        self.previous = SimpleNamespace(seq=seq, hash=event.hash)
        summary = self.summary
        summary.events += 1
        summary.first_seq = summary.first_seq if summary.first_seq is not None else seq
        summary.last_seq = seq
        summary.head_hash = event.hash


def verify_records(records: Iterable[dict], *, scope: str) -> ChainSummary:
    verifier = ChainVerifier(scope)
    for record in records:
        verifier.feed(record)
    return verifier.summary


@dataclass
class BatchReport:
    batch: RegistryImport
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def verify_imported() -> list[BatchReport]:
    """Re-verify every imported history: its events' hashes and links, its count and head
    hash against the ``registry.imported`` event that anchored it in this registry's chain."""
    reports = []
    for batch in RegistryImport.objects.order_by("pk"):
        events = ImportedAuditEvent.objects.filter(batch=batch).order_by("seq")
        try:
            summary = verify_records(
                (
                    {name: getattr(e, name) for name in _FIELDS}
                    | {"created_at": e.created_at.isoformat()}
                    for e in events.iterator(chunk_size=2000)
                ),
                scope=batch.audit_scope,
            )
        except ChainProblem as e:
            reports.append(BatchReport(batch, str(e)))
            continue
        anchor = AuditEvent.objects.filter(
            action="registry.imported", target_type="registryimport", target_id=str(batch.pk)
        ).first()
        if anchor is None:
            reports.append(BatchReport(batch, "no registry.imported event anchors it"))
        elif (anchor.after or {}).get("audit_head_hash", "") != summary.head_hash or (
            anchor.after or {}
        ).get("audit_events") != summary.events:
            reports.append(
                BatchReport(
                    batch, "its events differ from what the registry.imported event recorded"
                )
            )
        else:
            reports.append(BatchReport(batch))
    return reports


_FIELDS = [
    "seq", "actor_id", "actor_username", "action", "model_id", "target_type", "target_id",
    "target_label", "before", "after", "reason", "ip_address", "prev_hash", "hash",
]  # fmt: skip


def imported_events(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], ImportedAuditEvent]:
    """The imported events named by ``(batch id, seq)`` pairs, in one query: what imported
    signatures are checked against (approvals.selectors reads them through this)."""
    batches = {batch for batch, _ in pairs}
    seqs = {seq for _, seq in pairs}
    events = ImportedAuditEvent.objects.filter(batch_id__in=batches, seq__in=seqs)
    return {(e.batch_id, e.seq): e for e in events if (e.batch_id, e.seq) in set(pairs)}
