"""Signatures as shown and checked: standing (valid, withdrawn, superseded) and verification
against the audit event written with each (approvals.selectors, manage.py verify_signatures)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from approvals import selectors, services
from approvals.models import Signature
from audit.models import AuditEvent
from tests import factories
from tests.approvals.conftest import good_version


def _tamper(signature: Signature, **fields) -> None:
    """Edit a signature's row behind the model's back, as someone with database access could
    (SQLite has no trigger; on PostgreSQL the trigger of migration 0010 refuses it)."""
    Signature.objects.filter(pk=signature.pk).update(**fields)


@pytest.fixture
def approved(model, editor, reviewer):
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    signature = factories.sign_approval(v, reviewer, reason="Looks right")
    v.refresh_from_db()
    return v, signature


def test_a_signed_approval_verifies_and_is_valid(approved, reviewer):
    v, signature = approved
    [shown] = selectors.version_signatures(v)
    assert shown.pk == signature.pk
    assert shown.verifies and shown.problems == []
    assert shown.standing == "valid"
    event = AuditEvent.objects.get(seq=shown.audit_seq)
    assert event.action == "review.approved" and event.hash == shown.audit_hash
    assert event.after["signature_meaning"] == "Approved for production use"
    assert shown.content_digest == v.content_digest


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"meaning": "Reviewed — technical"}, "the meaning differs"),
        ({"printed_name": "Someone Else"}, "the printed name differs"),
        ({"content_digest": "sha256:" + "0" * 64}, "the content digest differs"),
        ({"audit_hash": "f" * 64}, "does not have the hash"),
    ],
)
def test_a_tampered_signature_does_not_verify(approved, fields, problem):
    v, signature = approved
    _tamper(signature, **fields)
    [shown] = selectors.version_signatures(v)
    assert not shown.verifies
    assert any(problem in p for p in shown.problems), shown.problems


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
def test_a_signature_moved_to_another_version_does_not_verify(approved, model, editor):
    v, signature = approved
    other = good_version(model, editor, auc=0.91)
    services.version_submit(actor=editor, version=other)
    _tamper(signature, version_id=other.pk, review=None)
    [shown] = selectors.version_signatures(other)
    assert not shown.verifies
    assert any("about another version" in p for p in shown.problems)
    assert selectors.version_signatures(v) == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
def test_a_signature_pointed_at_another_audit_event_does_not_verify(approved, model, editor):
    v, signature = approved
    other_event = AuditEvent.objects.filter(action="version.submitted").first()
    _tamper(signature, audit_seq=other_event.seq, audit_hash=other_event.hash)
    [shown] = selectors.version_signatures(v)
    assert not shown.verifies
    assert any("records version.submitted" in p for p in shown.problems)
    assert any("carries no signature" in p for p in shown.problems)


def test_a_withdrawn_review_keeps_its_signature_marked_withdrawn(model, editor, reviewer):
    from approvals.models import ReviewPolicy

    ReviewPolicy.objects.update_or_create(model=model, defaults={"required_approvals": 2})
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    factories.sign_approval(v, reviewer)
    services.version_withdraw(actor=editor, version=v)
    [shown] = selectors.version_signatures(v)
    assert shown.standing == "withdrawn" and shown.verifies


def test_an_alias_move_replaced_later_is_marked_superseded(model, editor, reviewer, promoter):
    first, second = good_version(model, editor), good_version(model, editor, auc=0.92)
    for v in (first, second):
        services.version_submit(actor=editor, version=v)
        factories.sign_approval(v, reviewer)
    factories.sign_alias(first, promoter)
    factories.sign_alias(second, promoter)
    rollback = factories.sign_rollback(model, promoter, reason="latency spike")
    by_version = selectors.signatures_by_version([first, second])
    first_moves = [s for s in by_version[first.pk] if s.action != "approve"]
    second_moves = [s for s in by_version[second.pk] if s.action != "approve"]
    assert [(s.action, s.standing) for s in first_moves] == [
        ("promote", "superseded"),
        ("rollback", "valid"),
    ]
    assert [(s.action, s.standing) for s in second_moves] == [("promote", "superseded")]
    assert rollback.version_id == first.pk
    assert all(s.verifies for s in by_version[first.pk] + by_version[second.pk])


def test_verify_signatures_passes_on_good_signatures(approved):
    out = StringIO()
    call_command("verify_signatures", stdout=out)
    assert "Signatures OK: 1 verified." in out.getvalue()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
def test_verify_signatures_names_a_tampered_signature_and_fails(approved):
    from django.core.management.base import CommandError

    v, signature = approved
    _tamper(signature, meaning="Reviewed — technical")
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 signatures do not verify"):
        call_command("verify_signatures", stdout=out)
    assert f"signature #{signature.pk}" in out.getvalue()
    assert "the meaning differs from the one in the audit event" in out.getvalue()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
def test_check_invariants_names_a_signature_that_does_not_verify(approved):
    from registry_site import invariants

    v, signature = approved
    assert invariants.check_signatures() == []
    _tamper(signature, printed_name="Mallory")
    [violation] = invariants.check_signatures()
    assert violation.kind == "signature"
    assert "Mallory" in violation.message and "printed name differs" in violation.message
