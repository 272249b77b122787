"""The review workflow through its pages: review page, actions, inbox, aliases, audit, policy."""

import pytest
from django.urls import reverse

from approvals import selectors, services
from approvals.models import Review
from audit.models import AuditEvent
from models_app import summary
from models_app.access import Role
from models_app.models import ModelVersion
from models_app.sharing import sharing_set
from tests import factories

pytestmark = pytest.mark.django_db
S = ModelVersion.Status


def url(name, version, **extra):
    return reverse(f"approvals:{name}", args=[version.model.slug, version.number], **extra)


@pytest.fixture
def submitted(make_version, editor):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    v.refresh_from_db()
    return v


def test_review_page_shows_candidate_against_production(
    client_for, model, make_version, editor, reviewer, promoter
):
    prod = make_version(0.88)
    services.version_submit(actor=editor, version=prod)
    services.review_approve(actor=reviewer, version=prod)
    prod.refresh_from_db()
    services.alias_set(actor=promoter, model=model, name="production", version=prod)
    candidate = make_version(0.91)
    services.version_submit(actor=editor, version=candidate)
    response = client_for(factories.user("r9")).get(url("review", candidate))
    assert response.status_code == 404  # not shared with r9
    factories.grant(reviewer, model, "review")
    html = client_for(reviewer).get(url("review", candidate)).content.decode()
    assert "against production v1" in html
    assert "delta-better" in html  # auc went up
    assert "Version has a description" in html
    assert "Approve" in html and "Reject" in html


def seen(version: ModelVersion) -> str:
    """The digest the review page puts in its forms."""
    return ModelVersion.objects.get(pk=version.pk).content_digest


def test_approve_through_the_page(client_for, submitted, reviewer):
    response = client_for(reviewer).post(
        url("approve", submitted), {"reason": "ok", "content_digest": seen(submitted)}
    )
    assert response.status_code == 302
    submitted.refresh_from_db()
    assert submitted.status == S.APPROVED


def test_self_approval_through_the_page_is_403_with_message(client_for, model, owner):
    from tests.approvals.conftest import good_version

    v = good_version(model, owner)
    services.version_submit(actor=owner, version=v)
    response = client_for(owner).post(url("approve", v))
    assert response.status_code == 403
    assert "separation of duties" in response.content.decode()
    assert not Review.objects.exists()


def test_approving_a_draft_through_the_page_is_409(client_for, make_version, reviewer):
    v = make_version()
    response = client_for(reviewer).post(url("approve", v))
    assert response.status_code == 409
    assert "is draft; it cannot be approved" in response.content.decode()


def test_reject_without_reason_is_400_and_changes_nothing(client_for, submitted, reviewer):
    response = client_for(reviewer).post(url("reject", submitted), {"reason": ""})
    assert response.status_code == 400
    assert "Say why" in response.content.decode()
    submitted.refresh_from_db()
    assert submitted.status == S.IN_REVIEW


def test_viewer_cannot_approve_and_outsider_gets_404(client_for, submitted, viewer, outsider):
    assert client_for(viewer).post(url("approve", submitted)).status_code == 403
    assert client_for(outsider).post(url("approve", submitted)).status_code == 404
    assert client_for(outsider).get(url("review", submitted)).status_code == 404
    submitted.refresh_from_db()
    assert submitted.status == S.IN_REVIEW


def test_actions_refuse_get(client_for, submitted, reviewer):
    for name in ("approve", "reject", "submit", "withdraw", "comments", "archive"):
        target = url("comment" if name == "comments" else name, submitted)
        assert client_for(reviewer).get(target).status_code == 405


def test_failing_gates_with_override_through_the_page(client_for, model, editor, owner):
    v = factories.version(model, editor, files={"m": b"1"})
    services.version_submit(actor=editor, version=v)
    c = client_for(owner)
    assert c.post(url("approve", v), {"content_digest": seen(v)}).status_code == 409
    response = c.post(
        url("approve", v), {"override_reason": "incident 42 hotfix", "content_digest": seen(v)}
    )
    assert response.status_code == 302
    page = c.get(v.get_absolute_url()).content.decode()
    assert "Approved despite failing gates" in page and "incident 42 hotfix" in page


def test_comment_thread_with_reply_and_metric(client_for, submitted, reviewer, editor):
    c = client_for(reviewer)
    c.post(url("comment", submitted), {"body": "AUC looks high", "metric": "auc"})
    parent = submitted.comments.get()
    client_for(editor).post(
        url("comment", submitted), {"body": "Checked: no leak", "parent": parent.pk}
    )
    html = c.get(url("review", submitted)).content.decode()
    assert "AUC looks high" in html and "about auc" in html and "Checked: no leak" in html
    assert AuditEvent.objects.filter(action="comment.added").count() == 2


def test_bad_comments_are_refused(client_for, submitted, reviewer):
    c = client_for(reviewer)
    assert c.post(url("comment", submitted), {"body": ""}).status_code == 400
    assert c.post(url("comment", submitted), {"body": "x", "parent": "999"}).status_code == 400
    assert c.post(url("comment", submitted), {"body": "x", "metric": "nope"}).status_code == 400
    assert not submitted.comments.exists()


def test_inbox_lists_what_waits_for_me_with_badge(client_for, submitted, reviewer, editor):
    html = client_for(reviewer).get(reverse("approvals:inbox")).content.decode()
    assert f"fraud v{submitted.number}" in html
    assert 'class="badge"' in html
    author_view = client_for(editor).get(reverse("approvals:inbox")).content.decode()
    assert "Nothing waits for your review" in author_view  # authors do not review their own


def test_inbox_and_review_page_query_counts_are_constant(
    client_for, model, editor, reviewer, assert_constant_queries
):
    from approvals.models import Comment
    from models_app.models import Metric
    from tests.approvals.conftest import good_version

    first = good_version(model, editor)
    services.version_submit(actor=editor, version=first)
    for i in range(2):
        services.comment_add(actor=reviewer, version=first, body=f"c{i}", metric="auc")
    c = client_for(reviewer)

    def inbox():
        assert c.get(reverse("approvals:inbox")).status_code == 200

    def review():
        assert c.get(url("review", first)).status_code == 200

    def grow():
        # 300 more versions waiting in review, 300 more comments and metrics on the candidate.
        start = model.versions.count() + 1
        ModelVersion.objects.bulk_create(
            ModelVersion(
                model=model, number=n, created_by=editor, status=S.IN_REVIEW, submitted_by=editor
            )  # fmt: skip
            for n in range(start, start + 300)
        )
        model.next_version_number = start + 300
        model.save(update_fields=["next_version_number"])
        summary.recompute([model.pk])
        Comment.objects.bulk_create(
            Comment(version=first, author=reviewer, body=f"more {i}") for i in range(300)
        )
        Metric.objects.bulk_create(
            Metric(version=first, name=f"m{i}", value=i / 300) for i in range(300)
        )

    from tests.conftest import count_queries

    review()
    small_review = count_queries(review)
    inbox_count = assert_constant_queries(inbox, grow)  # grows the data between its two counts
    assert count_queries(review) == small_review, "review page queries grew with the data"
    assert inbox_count <= 10
    assert small_review <= 27  # (26 until the badge read the reviewer's models first)


def test_promote_and_rollback_through_the_model_page(
    client_for, model, make_version, editor, reviewer, promoter
):
    versions = []
    for auc in (0.9, 0.91):
        v = make_version(auc)
        services.version_submit(actor=editor, version=v)
        services.review_approve(actor=reviewer, version=v)
        versions.append(v)
    c = client_for(promoter)
    for v in versions:
        response = c.post(
            reverse("approvals:alias_set", args=[model.slug]),
            {"alias": "production", "version": v.number, "note": "go"},
        )
        assert response.status_code == 302
    page = c.get(model.get_absolute_url()).content.decode()
    assert "Roll back to v1" in page
    assert (
        c.post(reverse("approvals:rollback", args=[model.slug]), {"reason": ""}).status_code == 400
    )
    response = c.post(reverse("approvals:rollback", args=[model.slug]), {"reason": "latency"})
    assert response.status_code == 302
    assert selectors.production_of(model).number == 1


def test_non_promoter_moving_production_is_403(client_for, model, make_version, editor, reviewer):
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    response = client_for(editor).post(
        reverse("approvals:alias_set", args=[model.slug]), {"alias": "production", "version": 1}
    )
    assert response.status_code == 403
    assert "promote role" in response.content.decode()
    assert not model.aliases.exists()


def test_promoting_a_draft_is_409(client_for, model, make_version, promoter):
    make_version()
    response = client_for(promoter).post(
        reverse("approvals:alias_set", args=[model.slug]), {"alias": "production", "version": 1}
    )
    assert response.status_code == 409
    assert "Only approved versions may become production" in response.content.decode()


def test_alias_page_answers_what_was_production_at(
    client_for, model, make_version, editor, reviewer, promoter
):
    from datetime import timedelta

    from django.utils import timezone

    from approvals.models import AliasAssignment

    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    services.alias_set(actor=promoter, model=model, name="production", version=v)
    AliasAssignment.objects.update(assigned_at=timezone.now() - timedelta(days=10))
    c = client_for(promoter)
    when = (timezone.now() - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    html = c.get(reverse("approvals:aliases", args=[model.slug]), {"at": when}).content.decode()
    assert "pointed at" in html and ">v1<" in html
    before = (timezone.now() - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    html = c.get(reverse("approvals:aliases", args=[model.slug]), {"at": before}).content.decode()
    assert "no version" in html
    bad = c.get(reverse("approvals:aliases", args=[model.slug]), {"at": "yesterday"})
    assert bad.status_code == 400


def test_audit_page_shows_only_events_of_visible_models(client_for, owner, outsider, superuser):
    mine = factories.registered_model(outsider, "mine")
    factories.registered_model(owner, "secret")
    html = client_for(outsider).get(reverse("approvals:audit")).content.decode()
    assert "mine" in html and "secret" not in html
    assert "secret" in client_for(superuser).get(reverse("approvals:audit")).content.decode()
    csv_body = b"".join(client_for(outsider).get(reverse("approvals:audit_csv")).streaming_content)
    assert b"mine" in csv_body and b"secret" not in csv_body
    assert mine.pk


def test_staff_who_are_not_superusers_read_only_the_audit_of_models_they_may_view(
    client_for, owner, superuser
):
    staff = factories.user("ops", is_staff=True)
    factories.registered_model(staff, "ops-model")
    factories.registered_model(owner, "secret")
    client = client_for(staff)
    html = client.get(reverse("approvals:audit")).content.decode()
    assert "ops-model" in html and "secret" not in html
    csv_body = b"".join(client.get(reverse("approvals:audit_csv")).streaming_content)
    assert b"ops-model" in csv_body and b"secret" not in csv_body
    api = client.get("/api/v1/audit").json()["items"]
    assert {e["model"] for e in api} == {"ops-model"}
    everything = client_for(superuser).get("/api/v1/audit").json()["items"]
    assert {"ops-model", "secret"} <= {e["model"] for e in everything}


def test_audit_filters_and_csv(client_for, owner, superuser):
    factories.registered_model(owner, "alpha")
    factories.registered_model(owner, "beta")
    c = client_for(superuser)
    html = c.get(reverse("approvals:audit"), {"model": "beta", "action": "model."}).content.decode()
    assert "beta" in html and "alpha" not in html
    response = c.get(reverse("approvals:audit_csv"), {"actor": "owner"})
    assert response["Content-Disposition"] == 'attachment; filename="audit.csv"'
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("seq,created_at,actor,action")
    assert c.get(reverse("approvals:audit"), {"since": "not-a-date"}).status_code == 400


def test_audit_page_query_count_is_constant(client_for, owner, viewer, assert_constant_queries):
    from django.db import transaction

    from audit import chain

    model = factories.registered_model(owner, "m0")
    factories.grant(viewer, model, "view")
    c = client_for(viewer)

    def get():
        assert c.get(reverse("approvals:audit")).status_code == 200

    def grow():
        with transaction.atomic():
            for i in range(300):
                chain.record(actor=owner, action="comment.added", target=model, model=model,
                             after={"i": i})  # fmt: skip

    assert assert_constant_queries(get, grow) <= 7


def test_policy_page_sets_quorum_and_gates(client_for, model, owner, viewer):
    c = client_for(owner)
    response = c.post(
        reverse("approvals:policy", args=[model.slug]),
        {
            "required_approvals": "2",
            "require_description": "on",
            "gate-0-metric": "auc",
            "gate-0-split": "test",
            "gate-0-threshold": "0.85",
            "gate-0-max_regression": "0.01",
        },
    )
    assert response.status_code == 302
    policy = model.review_policy
    assert policy.required_approvals == 2 and not policy.require_metrics
    assert policy.gates.get().threshold == 0.85
    assert client_for(viewer).get(reverse("approvals:policy", args=[model.slug])).status_code == 403


@pytest.mark.parametrize(
    "data,message",
    [
        ({"required_approvals": "0"}, "Between 1 and 10"),
        ({"required_approvals": "many"}, "whole number"),
        ({"required_approvals": "1", "gate-0-metric": "auc"}, "threshold, a tolerance"),
        ({"required_approvals": "1", "gate-0-metric": "auc", "gate-0-threshold": "nan"}, "finite"),
        (
            {"required_approvals": "1", "gate-0-metric": "auc", "gate-0-max_regression": "-1"},
            "negative",
        ),
    ],
)
def test_bad_policy_input_changes_nothing(client_for, model, owner, data, message):
    response = client_for(owner).post(reverse("approvals:policy", args=[model.slug]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not hasattr(model, "review_policy") or model.review_policy.required_approvals == 1


def test_revoked_author_cannot_withdraw_through_the_page(
    client_for, model, make_version, owner, editor, reviewer
):
    services.policy_update(actor=owner, model=model, required_approvals=2)
    v = make_version()
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v, reason="fine")
    sharing_set(actor=owner, model=model, principal=editor, roles={Role.VIEW})  # edit revoked
    response = client_for(editor).post(url("withdraw", v), {"reason": "mine"})
    assert response.status_code == 403
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW
    assert Review.objects.filter(version=v, discarded_at__isnull=True).count() == 1
    assert not AuditEvent.objects.filter(action="version.withdrawn").exists()
