"""The review workflow through the API: the services decide, the API reports (403 for roles and
separation of duties, 409 for states and failing gates)."""

import pytest

from approvals import services as workflow
from approvals.models import Comment, Review
from models_app.access import Role
from models_app.models import ModelVersion
from models_app.sharing import sharing_set
from tests import factories
from tests.api.conftest import error_of, good_version, send

pytestmark = pytest.mark.django_db

V1 = "/api/v1/models/fraud/versions/1"


def test_submit_then_approve(api_client, editor, reviewer, model):
    good_version(model, editor)
    submitted = send(api_client(editor), "post", V1 + "/submit")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "in_review"
    assert submitted.json()["submitted_by"] == "editor"
    seen = submitted.json()["content_digest"]
    assert seen.startswith("sha256:")
    approved = send(
        api_client(reviewer),
        "post",
        V1 + "/approve",
        {"reason": "Looks right.", "content_digest": seen},
    )
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["review"]["decision"] == "approve"
    assert body["review"]["reason"] == "Looks right."
    assert body["version"]["status"] == "approved"
    assert [r["reviewer"] for r in body["version"]["reviews"]] == ["reviewer"]
    assert body["review"]["content_digest"] == seen


def seen(version: ModelVersion) -> str:
    """The digest a reviewer reads from the version (GET .../versions/N)."""
    return ModelVersion.objects.get(pk=version.pk).content_digest


def test_approve_without_the_content_digest_is_400_and_records_nothing(
    api_client, editor, reviewer, model
):
    workflow.version_submit(actor=editor, version=good_version(model, editor))
    response = send(api_client(reviewer), "post", V1 + "/approve")  # an empty body
    assert response.status_code == 400
    assert error_of(response)["field"] == "content_digest"
    assert not Review.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"


def test_self_approval_is_403_and_changes_nothing(api_client, editor, model):
    factories.grant(editor, model, "review")
    workflow.version_submit(actor=editor, version=good_version(model, editor))
    response = send(api_client(editor), "post", V1 + "/approve", {"reason": "mine is fine"})
    assert response.status_code == 403
    assert "separation of duties" in error_of(response)["message"]
    assert not Review.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"


def test_reviewer_role_is_needed_to_approve(api_client, viewer, editor, model):
    workflow.version_submit(actor=editor, version=good_version(model, editor))
    response = send(api_client(viewer), "post", V1 + "/approve")
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_failing_gates_are_409_listing_them(api_client, editor, reviewer, model):
    version = factories.version(model, editor, files={"m.bin": b"w"})  # no description etc.
    workflow.version_submit(actor=editor, version=version)
    response = send(
        api_client(reviewer), "post", V1 + "/approve", {"content_digest": seen(version)}
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "gates_failed"
    failing = {g["key"] for g in error["gates"] if not g["passed"]}
    assert failing == {"description", "training_data", "metrics"}
    assert not Review.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"


def test_a_manager_may_override_failing_gates_with_a_reason(api_client, editor, owner, model):
    version = factories.version(model, editor, files={"m.bin": b"w"})
    workflow.version_submit(actor=editor, version=version)
    response = send(
        api_client(owner), "post", V1 + "/approve",
        {"reason": "ok", "override_reason": "Hotfix; metrics come tomorrow.",
         "content_digest": seen(version)},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["review"]["override_reason"] == "Hotfix; metrics come tomorrow."


def test_reject_needs_a_reason(api_client, editor, reviewer, model):
    version = good_version(model, editor)
    workflow.version_submit(actor=editor, version=version)
    c = api_client(reviewer)
    refused = send(c, "post", V1 + "/reject", {"reason": "  ", "content_digest": seen(version)})
    assert refused.status_code == 400
    assert error_of(refused)["field"] == "reason"
    assert ModelVersion.objects.get().status == "in_review"
    rejected = send(
        c, "post", V1 + "/reject", {"reason": "Leaks the label.", "content_digest": seen(version)}
    )
    assert rejected.status_code == 200
    assert rejected.json()["version"]["status"] == "rejected"


def test_withdraw_is_for_the_author_only(api_client, editor, owner, model):
    workflow.version_submit(actor=editor, version=good_version(model, editor))
    refused = send(api_client(owner), "post", V1 + "/withdraw", {"reason": "mine now"})
    assert refused.status_code == 403
    assert ModelVersion.objects.get().status == "in_review"
    done = send(api_client(editor), "post", V1 + "/withdraw", {"reason": "forgot a file"})
    assert done.status_code == 200
    assert done.json()["status"] == "draft"


def test_only_drafts_can_be_submitted(api_client, editor, model):
    workflow.version_submit(actor=editor, version=good_version(model, editor))
    response = send(api_client(editor), "post", V1 + "/submit")
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"


def test_archive_needs_manage_and_a_decided_version(api_client, editor, reviewer, owner, model):
    version = good_version(model, editor)
    workflow.version_submit(actor=editor, version=version)
    workflow.review_reject(actor=reviewer, version=version, reason="no")
    assert send(api_client(editor), "post", V1 + "/archive").status_code == 403
    response = send(api_client(owner), "post", V1 + "/archive", {"reason": "superseded"})
    assert response.status_code == 200
    assert response.json()["status"] == "archived"


def test_comments_can_be_added_and_answered(api_client, viewer, editor, model):
    good_version(model, editor)
    c = api_client(viewer)
    first = send(c, "post", V1 + "/comments", {"body": "Why did AUC drop?", "metric": "auc"})
    assert first.status_code == 201
    reply = send(c, "post", V1 + "/comments", {"body": "New split.", "parent": first.json()["id"]})
    assert reply.status_code == 201
    listed = c.get(V1 + "/comments").json()
    assert [(x["body"], x["parent"]) for x in listed["items"]] == [
        ("Why did AUC drop?", None), ("New split.", first.json()["id"])
    ]  # fmt: skip


def test_a_reply_to_a_comment_elsewhere_is_400(api_client, viewer, editor, model):
    good_version(model, editor)
    other = good_version(model, editor)
    elsewhere = workflow.comment_add(actor=editor, version=other, body="on v2")
    response = send(api_client(viewer), "post", V1 + "/comments",
                    {"body": "hi", "parent": elsewhere.pk})  # fmt: skip
    assert response.status_code == 400
    assert error_of(response)["field"] == "parent"
    assert Comment.objects.count() == 1


def test_an_empty_comment_is_400(api_client, viewer, editor, model):
    good_version(model, editor)
    response = send(api_client(viewer), "post", V1 + "/comments", {"body": "   "})
    assert response.status_code == 400
    assert error_of(response)["field"] == "body"
    assert not Comment.objects.exists()


def test_revoked_author_cannot_withdraw(api_client, editor, owner, reviewer, model):
    workflow.policy_update(actor=owner, model=model, required_approvals=2)
    version = good_version(model, editor)
    workflow.version_submit(actor=editor, version=version)
    workflow.review_approve(actor=reviewer, version=version, reason="fine")
    sharing_set(actor=owner, model=model, principal=editor, roles={Role.VIEW})  # edit revoked
    refused = send(api_client(editor), "post", V1 + "/withdraw", {"reason": "mine"})
    assert refused.status_code == 403
    assert ModelVersion.objects.get().status == "in_review"
    assert Review.objects.filter(version=version, discarded_at__isnull=True).count() == 1


def test_approving_a_file_that_imports_off_the_allowlist_is_409_and_records_nothing(
    api_client, editor, reviewer, model
):
    # A protocol-0 pickle under a PyTorch name: found by content, its import is not allowed.
    payload = b"cacme.tools\nrun\n(S'touch /tmp/owned'\ntR."
    version = factories.version(
        model, editor, description="d", metrics=[{"name": "auc", "value": 0.9, "split": "test"}],
        datasets=[{"name": "claims", "role": "train"}], files={"pytorch_model.bin": payload},
    )  # fmt: skip
    workflow.version_submit(actor=editor, version=version)
    body = {"reason": "Looks right.", "content_digest": seen(version)}
    response = send(api_client(reviewer), "post", V1 + "/approve", body)
    assert response.status_code == 409
    failed = {g["key"]: g for g in error_of(response)["gates"] if not g["passed"]}
    assert failed["dangerous_files"]["detail"] == (
        "pytorch_model.bin: imports acme.tools.run, which is not on the allowlist of model formats."
    )
    assert not Review.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"
