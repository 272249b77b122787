"""The review state machine, gates, separation of duties, aliases and rollback."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from approvals import selectors, services
from approvals.models import AliasAssignment, Review
from audit.chain import verify_chain
from audit.models import AuditEvent
from core.errors import Conflict
from models_app import services as catalogue
from models_app.access import Role
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion
from models_app.sharing import sharing_set
from tests import factories

pytestmark = pytest.mark.django_db
S = ModelVersion.Status


def approved_version(make_version, editor, reviewer, auc=0.9):
    v = make_version(auc)
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    return v


def test_submit_freezes_and_approval_flips_state(make_version, editor, reviewer):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW and v.submitted_by == editor
    with pytest.raises(Conflict, match="frozen"):
        catalogue.version_update(actor=editor, version=v, metadata=parse_metadata({}))
    services.review_approve(actor=reviewer, version=v, reason="looks good")
    v.refresh_from_db()
    assert v.status == S.APPROVED
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-3:] == ["version.submitted", "review.approved", "version.approved"]
    assert verify_chain().ok


def test_author_cannot_approve_own_version(model, owner):
    factories.grant(owner, model, "review")  # owner is a manager, so also a reviewer
    from tests.approvals.conftest import good_version

    v = good_version(model, owner)
    services.version_submit(actor=owner, version=v)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        services.review_approve(actor=owner, version=v)


def test_submitter_cannot_approve(model, make_version, editor, owner):
    v = make_version()
    services.version_submit(actor=owner, version=v)  # the manager submits the editor's version
    with pytest.raises(PermissionDenied, match="separation of duties"):
        services.review_approve(actor=owner, version=v)


def test_approving_a_draft_is_refused(make_version, reviewer):
    v = make_version()
    with pytest.raises(Conflict, match="is draft; it cannot be approved"):
        services.review_approve(actor=reviewer, version=v)


def test_approving_twice_is_refused(model, make_version, editor, reviewer):
    services.policy_update(actor=model.owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    with pytest.raises(Conflict, match="already reviewed"):
        services.review_approve(actor=reviewer, version=v)
    assert Review.objects.count() == 1


def test_quorum_of_two_needs_two_reviewers(model, make_version, editor, reviewer, reviewer2):
    services.policy_update(actor=model.owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW
    services.review_approve(actor=reviewer2, version=v)
    v.refresh_from_db()
    assert v.status == S.APPROVED
    assert AuditEvent.objects.filter(action="version.approved").count() == 1


def test_one_rejection_rejects_and_needs_a_reason(make_version, editor, reviewer, reviewer2):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    with pytest.raises(ValidationError, match="Say why"):
        services.review_reject(actor=reviewer, version=v, reason="  ")
    services.review_reject(actor=reviewer, version=v, reason="leaks the label")
    v.refresh_from_db()
    assert v.status == S.REJECTED
    with pytest.raises(Conflict, match="is rejected; it cannot be approved"):
        services.review_approve(actor=reviewer2, version=v)


def test_non_reviewer_cannot_review(make_version, editor, viewer):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    with pytest.raises(PermissionDenied, match="review role"):
        services.review_approve(actor=viewer, version=v)


def test_withdraw_returns_to_draft_and_discards_reviews(model, make_version, editor, reviewer):
    services.policy_update(actor=model.owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    services.version_withdraw(actor=editor, version=v, reason="forgot a file")
    v.refresh_from_db()
    assert v.status == S.DRAFT
    assert Review.objects.get().discarded_at is not None
    event = AuditEvent.objects.get(action="version.withdrawn")
    assert event.after["reviews_discarded"] == 1
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)  # may review again in the new round


def test_only_author_or_submitter_may_withdraw(make_version, editor, reviewer):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    with pytest.raises(PermissionDenied, match="author or submitter"):
        services.version_withdraw(actor=reviewer, version=v)


def test_failing_gate_refuses_approval_without_override(model, editor, reviewer):
    v = factories.version(model, editor, files={"m.bin": b"x"})  # no description/data/metrics
    services.version_submit(actor=editor, version=v)
    with pytest.raises(services.GateFailure) as e:
        services.review_approve(actor=reviewer, version=v)
    assert "Version has a description" in str(e.value)
    assert "Training dataset linked" in str(e.value)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW and not Review.objects.exists()


def test_override_needs_manage_role_and_is_recorded(model, editor, reviewer, owner):
    v = factories.version(model, editor, files={"m.bin": b"x"})
    services.version_submit(actor=editor, version=v)
    with pytest.raises(services.GateFailure, match="manage role"):
        services.review_approve(actor=reviewer, version=v, override_reason="urgent fix")
    services.review_approve(actor=owner, version=v, override_reason="hotfix for incident 42")
    review = Review.objects.get()
    assert review.override_reason == "hotfix for incident 42"
    event = AuditEvent.objects.get(action="review.gate_override")
    assert event.reason == "hotfix for incident 42"
    assert {g["key"] for g in event.after["gates"]} >= {"description", "training_data"}


def test_threshold_and_regression_gates_respect_direction(
    model, make_version, editor, reviewer, promoter
):
    services.policy_update(
        actor=model.owner,
        model=model,
        required_approvals=1,
        metric_gates=[
            {"metric": "auc", "split": "test", "threshold": 0.85, "max_regression": 0.01},
        ],
    )
    prod = approved_version(make_version, editor, reviewer, auc=0.92)
    services.alias_set(actor=promoter, model=model, name="production", version=prod)
    worse = make_version(0.90)  # passes the threshold, regresses by 0.02 > 0.01
    services.version_submit(actor=editor, version=worse)
    with pytest.raises(services.GateFailure, match="no worse than production"):
        services.review_approve(actor=reviewer, version=worse)
    low = make_version(0.80)
    services.version_submit(actor=editor, version=low)
    with pytest.raises(services.GateFailure, match="auc on test ≥ 0.85"):
        services.review_approve(actor=reviewer, version=low)
    fine = make_version(0.915)  # within tolerance
    services.version_submit(actor=editor, version=fine)
    services.review_approve(actor=reviewer, version=fine)


def test_lower_is_better_metrics_gate_the_other_way(model, editor, reviewer):
    services.policy_update(
        actor=model.owner,
        model=model,
        required_approvals=1,
        metric_gates=[{"metric": "latency_ms", "split": "", "threshold": 50}],
    )
    v = factories.version(
        model,
        editor,
        description="d",
        datasets=["claims"],
        files={"m": b"1"},
        metrics={"latency_ms": 70},
    )
    services.version_submit(actor=editor, version=v)
    with pytest.raises(services.GateFailure, match="latency_ms ≤ 50"):
        services.review_approve(actor=reviewer, version=v)


def test_tampered_artifact_fails_the_gate_on_approval(make_version, editor, reviewer):
    v = make_version()
    artifact = v.artifacts.get()
    default_storage.delete(artifact.storage_key)
    with open(default_storage.path(artifact.storage_key), "wb") as f:
        f.write(b"evil")
    services.version_submit(actor=editor, version=v)
    with pytest.raises(services.GateFailure, match="Files match their recorded sha256"):
        services.review_approve(actor=reviewer, version=v)


def test_promote_needs_approved_version_and_promote_role(
    model, make_version, editor, reviewer, promoter
):
    draft = make_version(0.7)
    with pytest.raises(Conflict, match="Only approved versions may become production"):
        services.alias_set(actor=promoter, model=model, name="production", version=draft)
    v = approved_version(make_version, editor, reviewer)
    with pytest.raises(PermissionDenied, match="promote role"):
        services.alias_set(actor=editor, model=model, name="production", version=v)
    services.alias_set(actor=promoter, model=model, name="production", version=v, note="go")
    assert selectors.production_of(model) == v


def test_rejected_version_cannot_be_promoted(model, make_version, editor, reviewer, promoter):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_reject(actor=reviewer, version=v, reason="no")
    with pytest.raises(Conflict, match="is rejected"):
        services.alias_set(actor=promoter, model=model, name="production", version=v)


def test_editors_may_move_unprotected_aliases_to_any_version(model, make_version, editor):
    draft = make_version()
    services.alias_set(actor=editor, model=model, name="challenger", version=draft)
    assert model.aliases.get(name="challenger").version == draft


def test_rollback_returns_to_previous_holder_with_reason(
    model, make_version, editor, reviewer, promoter
):
    v1 = approved_version(make_version, editor, reviewer, 0.90)
    v2 = approved_version(make_version, editor, reviewer, 0.91)
    services.alias_set(actor=promoter, model=model, name="production", version=v1)
    services.alias_set(actor=promoter, model=model, name="production", version=v2)
    with pytest.raises(ValidationError, match="Say why"):
        services.alias_rollback(actor=promoter, model=model, reason="")
    services.alias_rollback(actor=promoter, model=model, reason="p95 latency spike")
    assert selectors.production_of(model) == v1
    entry = AliasAssignment.objects.first()
    assert entry.kind == "rollback" and entry.note == "p95 latency spike"
    with pytest.raises(Conflict, match="no earlier version"):
        services.alias_rollback(actor=promoter, model=model, reason="again")


def test_what_was_production_at_a_time(model, make_version, editor, reviewer, promoter):
    v1 = approved_version(make_version, editor, reviewer, 0.90)
    v2 = approved_version(make_version, editor, reviewer, 0.91)
    services.alias_set(actor=promoter, model=model, name="production", version=v1)
    AliasAssignment.objects.update(assigned_at=timezone.now() - timedelta(days=2))
    services.alias_set(actor=promoter, model=model, name="production", version=v2)
    now = timezone.now()
    assert selectors.alias_at(model, "production", now - timedelta(days=3)) is None
    assert selectors.alias_at(model, "production", now - timedelta(days=1)) == v1
    assert selectors.alias_at(model, "production", now) == v2


def test_archiving_the_production_version_is_refused(
    model, make_version, editor, reviewer, promoter, owner
):
    v = approved_version(make_version, editor, reviewer)
    services.alias_set(actor=promoter, model=model, name="production", version=v)
    with pytest.raises(Conflict, match="holds production"):
        services.version_archive(actor=owner, version=v)
    other = approved_version(make_version, editor, reviewer, 0.95)
    services.alias_set(actor=promoter, model=model, name="production", version=other)
    services.version_archive(actor=owner, version=v, reason="superseded")
    v.refresh_from_db()
    assert v.status == S.ARCHIVED


def test_bad_alias_names_are_refused(model, make_version, editor):
    v = make_version()
    for bad in ("", "Has Space", "latest", "x" * 70, "../prod"):
        with pytest.raises(ValidationError):
            services.alias_set(actor=editor, model=model, name=bad, version=v)


def test_notifications_reach_the_right_people(
    model, make_version, editor, reviewer, reviewer2, promoter
):
    for u in (editor, reviewer, reviewer2, promoter):
        u.email = f"{u.username}@example.org"
        u.save()
    v = make_version()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.version_submit(actor=editor, version=v)
    submitted_to = {m.to[0] for m in mail.outbox}
    assert {"reviewer@example.org", "reviewer2@example.org"} <= submitted_to
    assert "editor@example.org" not in submitted_to
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.review_approve(actor=reviewer, version=v)
    recipients = {m.to[0] for m in mail.outbox}
    assert "editor@example.org" in recipients  # the author hears the decision
    assert "promoter@example.org" in recipients  # promoters hear it is ready
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.comment_add(actor=reviewer2, version=v, body="nice AUC", metric="auc")
    recipients = {m.to[0] for m in mail.outbox}
    assert {"editor@example.org", "reviewer@example.org"} <= recipients
    assert "reviewer2@example.org" not in recipients


def test_comment_on_unknown_metric_is_refused(make_version, reviewer):
    v = make_version()
    with pytest.raises(ValidationError, match="no metric 'f1'"):
        services.comment_add(actor=reviewer, version=v, body="?", metric="f1")


def _with_email(*users):
    for u in users:
        u.email = f"{u.username}@example.org"
        u.save()


def test_a_participant_whose_access_was_revoked_hears_no_more_comments(
    model, make_version, owner, editor, reviewer, reviewer2
):
    from django.test import TestCase

    from models_app.sharing import sharing_set

    _with_email(editor, reviewer, reviewer2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.comment_add(actor=reviewer, version=v, body="first look")
    sharing_set(actor=owner, model=model, principal=reviewer, roles=set())
    sharing_set(actor=owner, model=model, principal=editor, roles=set())
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.comment_add(actor=reviewer2, version=v, body="private detail")
    recipients = {m.to[0] for m in mail.outbox}
    assert "reviewer@example.org" not in recipients  # a past commenter
    assert "editor@example.org" not in recipients  # the author
    assert "reviewer2@example.org" not in recipients  # their own comment


def test_an_author_whose_access_was_revoked_hears_no_decision(
    model, make_version, owner, editor, reviewer
):
    from django.test import TestCase

    from models_app.sharing import sharing_set

    _with_email(editor, reviewer)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    sharing_set(actor=owner, model=model, principal=editor, roles=set())
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.review_reject(actor=reviewer, version=v, reason="leaks labels")
    assert [m for m in mail.outbox if m.to == ["editor@example.org"]] == []


def test_a_reviewer_demoted_to_viewer_is_not_asked_to_review(
    model, make_version, owner, editor, reviewer, reviewer2
):
    from django.test import TestCase

    from models_app.sharing import sharing_set

    _with_email(editor, reviewer, reviewer2)
    sharing_set(actor=owner, model=model, principal=reviewer2, roles={Role.VIEW})
    v = make_version()
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.version_submit(actor=editor, version=v)
    recipients = {m.to[0] for m in mail.outbox}
    assert "reviewer@example.org" in recipients
    assert "reviewer2@example.org" not in recipients  # now only a viewer


def test_author_without_the_edit_role_may_not_withdraw(
    model, make_version, owner, editor, reviewer
):
    services.policy_update(actor=owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    sharing_set(actor=owner, model=model, principal=editor, roles={Role.VIEW})
    with pytest.raises(PermissionDenied, match="edit role"):
        services.version_withdraw(actor=editor, version=v)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW
    assert Review.objects.get().discarded_at is None
