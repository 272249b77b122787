"""Races on PostgreSQL: concurrent reviews and promotions end in one consistent state."""

from datetime import timedelta

import pytest
from django.db import connection  # noqa: F401 (used by the skipif condition)
from django.utils import timezone

from approvals import services
from approvals.models import Alias, AliasAssignment, Review
from audit.chain import verify_chain
from audit.models import AuditEvent
from core.errors import Conflict
from models_app.models import ModelVersion
from tests import factories
from tests.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


def test_approve_and_reject_at_the_same_moment(model, make_version, editor, reviewer, reviewer2):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    actions = [
        lambda: services.review_approve(actor=reviewer, version=v),
        lambda: services.review_reject(actor=reviewer2, version=v, reason="leak"),
    ]
    results = run_at_once(2, lambda i: actions[i]())
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == 1 and isinstance(losers[0], Conflict)
    assert "cannot be" in str(losers[0])
    v.refresh_from_db()
    assert v.status in (ModelVersion.Status.APPROVED, ModelVersion.Status.REJECTED)
    assert Review.objects.count() == 1
    assert verify_chain().ok


def test_twenty_concurrent_approvals_against_a_quorum_of_two(model, make_version, editor):
    reviewers = [factories.user(f"r{i}") for i in range(20)]
    for r in reviewers:
        factories.grant(r, model, "review")
    services.policy_update(actor=model.owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    results = run_at_once(20, lambda i: services.review_approve(actor=reviewers[i], version=v))
    made = [r for r in results if isinstance(r, Review)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 2
    assert all(isinstance(e, Conflict) and "is approved" in str(e) for e in refused)
    assert Review.objects.count() == 2
    assert AuditEvent.objects.filter(action="review.approved").count() == 2
    assert AuditEvent.objects.filter(action="version.approved").count() == 1
    v.refresh_from_db()
    assert v.status == ModelVersion.Status.APPROVED
    assert verify_chain().ok


def test_two_promoters_moving_production_at_once(model, make_version, editor, reviewer, promoter):
    other = factories.user("promoter2")
    factories.grant(other, model, "promote")
    versions = []
    for auc in (0.9, 0.91):
        v = make_version(auc)
        services.version_submit(actor=editor, version=v)
        services.review_approve(actor=reviewer, version=v)
        v.refresh_from_db()
        versions.append(v)
    promoters = [promoter, other]
    results = run_at_once(
        2,
        lambda i: services.alias_set(
            actor=promoters[i], model=model, name="production", version=versions[i]
        ),
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert Alias.objects.filter(model=model, name="production").count() == 1
    final = Alias.objects.get(model=model, name="production").version
    history = list(AliasAssignment.objects.order_by("assigned_at", "pk"))
    assert len(history) == 2
    assert history[1].previous_version == history[0].version  # serialised, not interleaved
    assert history[1].version == final
    assert verify_chain().ok


def test_marking_revalidation_due_from_two_workers_at_once_records_one_event(
    model, make_version, editor, reviewer
):
    services.policy_update(
        actor=model.owner, model=model, required_approvals=1, approval_valid_days=3
    )
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    later = timezone.now() + timedelta(days=4)
    results = run_at_once(8, lambda i: services.revalidation_mark_due(now=later))
    assert sorted(results) == [0] * 7 + [1]
    assert AuditEvent.objects.filter(action="version.revalidation_due").count() == 1
    assert verify_chain().ok


def test_two_reviewers_revalidating_at_once_renew_the_approval_once(
    model, make_version, editor, reviewer, reviewer2
):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    reviewers = [reviewer, reviewer2]
    results = run_at_once(
        2,
        lambda i: services.review_revalidate(
            actor=reviewers[i], version=v, decision="approve", content_digest=v.content_digest
        ),
    )
    assert all(isinstance(r, Review) for r in results)  # each its own round: both renew
    assert sorted(r.round for r in results) == [1, 2]
    assert AuditEvent.objects.filter(action="version.revalidated").count() == 2
    v.refresh_from_db()
    assert v.review_round == 2 and v.status == ModelVersion.Status.APPROVED
    assert verify_chain().ok
