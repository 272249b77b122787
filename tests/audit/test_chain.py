"""The audit log is a hash chain: editing, deleting or inserting a row is detected."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import chain
from audit.models import AuditChainHead, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_log(owner):
    model = factories.registered_model(owner, "fraud")
    for i in range(5):
        factories.version(model, owner, metrics={"auc": 0.8 + i / 100})
    return model


def bypass_append_only_trigger():
    """Simulate an attacker with direct database access (PostgreSQL refuses otherwise)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SET LOCAL session_replication_role = replica")


def test_verify_audit_passes_on_a_busy_log(busy_log, capsys):
    call_command("verify_audit")
    assert "Audit chain OK: 6 events verified" in capsys.readouterr().out


def test_modified_row_is_detected(busy_log):
    bypass_append_only_trigger()
    AuditEvent.objects.filter(seq=3).update(actor_username="mallory")
    with pytest.raises(CommandError, match="BROKEN at event #3: event #3 was modified"):
        call_command("verify_audit")


def test_deleted_row_is_detected(busy_log):
    bypass_append_only_trigger()
    AuditEvent.objects.filter(seq=4).delete()
    with pytest.raises(CommandError, match="event #4 is missing"):
        call_command("verify_audit")


def test_inserted_row_is_detected(busy_log):
    bypass_append_only_trigger()
    # Make room in the middle and insert a forged event with a correct-looking hash.
    for seq in range(6, 3, -1):
        AuditEvent.objects.filter(seq=seq).update(seq=seq + 1)
    forged = AuditEvent(
        seq=4,
        created_at=AuditEvent.objects.get(seq=3).created_at,
        actor_username="mallory",
        action="version.approved",
        prev_hash=AuditEvent.objects.get(seq=3).hash,
    )
    forged.hash = chain.compute_hash(forged)
    forged.save(force_insert=True)
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit")


def test_removed_newest_events_are_detected(busy_log):
    # Without the head row, a log cut after any event would verify as a shorter, intact chain.
    bypass_append_only_trigger()
    AuditEvent.objects.filter(seq__gte=5).delete()
    with pytest.raises(CommandError, match=r"events #5 to #6 are missing \(the chain head is at"):
        call_command("verify_audit")


def test_newest_event_replaced_by_a_consistent_forgery_is_detected(busy_log):
    bypass_append_only_trigger()
    last = AuditEvent.objects.get(seq=6)
    AuditEvent.objects.filter(seq=6).delete()
    forged = AuditEvent(
        seq=6, created_at=last.created_at, actor_username="mallory", action="version.approved",
        prev_hash=last.prev_hash,
    )  # fmt: skip
    forged.hash = chain.compute_hash(forged)
    forged.save(force_insert=True)
    with pytest.raises(CommandError, match="event #6 is not the one the chain head names"):
        call_command("verify_audit")


def test_the_head_moves_with_each_event_and_rolls_back_with_its_change(owner):
    with transaction.atomic():
        first = chain.record(actor=owner, action="model.created")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        chain.record(actor=owner, action="model.updated")
        1 / 0  # noqa: B018
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (first.seq, first.hash)
    with transaction.atomic():
        second = chain.record(actor=owner, action="model.updated")
    assert (second.seq, second.prev_hash) == (first.seq + 1, first.hash)


def test_a_missing_head_row_starts_again_from_the_newest_event(busy_log, owner):
    newest = AuditEvent.objects.order_by("-seq").first()
    AuditChainHead.objects.all().delete()  # as the test runner's flush leaves it
    with transaction.atomic():
        event = chain.record(actor=owner, action="model.updated")
    assert (event.seq, event.prev_hash) == (newest.seq + 1, newest.hash)
    assert chain.verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused(owner):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        chain.record(actor=owner, action="x")


def test_event_rolls_back_with_its_change(owner):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        chain.record(actor=owner, action="model.created")
        1 / 0  # noqa: B018
    assert not AuditEvent.objects.exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL trigger")
def test_postgresql_refuses_update_and_delete(busy_log):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(reason="edited")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).delete()
