"""The summary each model keeps of its versions (latest number, version count, count per
status: models_app.summary): right after every service that adds, deletes or moves a version,
and check_invariants names a model whose summary is wrong."""

import pytest
from django.db.models import F

from approvals import services as reviews
from core.errors import Conflict
from models_app import services, summary
from models_app.models import ModelVersion, RegisteredModel
from registry_site import invariants
from registry_site.mlflow_compat import services as mlflow_services
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db
S = ModelVersion.Status


@pytest.fixture
def model(owner, editor, reviewer):
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    factories.grant(reviewer, m, "review")
    return m


def kept(model) -> dict:
    """The summary as the model's row keeps it, checked against the versions first."""
    assert not summary.wrong_counts().exists(), invariants.check_summaries()
    row = RegisteredModel.objects.values(*summary.COLUMNS).get(pk=model.pk)
    return {column: n for column, n in row.items() if n}  # (the zeros left out)


def test_a_new_model_has_an_empty_summary(model):
    assert kept(model) == {}


def test_creating_versions_counts_drafts_and_moves_the_latest_number(model, editor):
    factories.version(model, editor)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "draft_count": 1}
    factories.version(model, editor)
    assert kept(model) == {"latest_number": 2, "version_count": 2, "draft_count": 2}


def test_deleting_the_latest_draft_gives_the_latest_number_back_to_the_one_before(model, editor):
    v1, v2, v3 = (factories.version(model, editor) for _ in range(3))
    services.version_delete(actor=editor, version=v3)
    assert kept(model) == {"latest_number": 2, "version_count": 2, "draft_count": 2}
    services.version_delete(actor=editor, version=v1)  # not the latest: it stays
    assert kept(model) == {"latest_number": 2, "version_count": 1, "draft_count": 1}
    services.version_delete(actor=editor, version=v2)
    assert kept(model) == {}
    factories.version(model, editor)  # numbers are never reused
    assert kept(model) == {"latest_number": 4, "version_count": 1, "draft_count": 1}


def test_submit_and_withdraw_move_a_version_between_draft_and_in_review(model, editor):
    v = good_version(model, editor)
    reviews.version_submit(actor=editor, version=v)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "in_review_count": 1}
    reviews.version_withdraw(actor=editor, version=v)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "draft_count": 1}


def test_approve_reject_and_archive_count_where_the_versions_went(model, owner, editor, reviewer):
    approved, rejected = good_version(model, editor), good_version(model, editor, auc=0.91)
    for v in (approved, rejected):
        reviews.version_submit(actor=editor, version=v)
    reviews.review_approve(actor=reviewer, version=approved)
    reviews.review_reject(actor=reviewer, version=rejected, reason="Recall fell.")
    assert kept(model) == {
        "latest_number": 2, "version_count": 2, "approved_count": 1, "rejected_count": 1,
    }  # fmt: skip
    reviews.version_archive(actor=owner, version=approved)
    reviews.version_archive(actor=owner, version=rejected)
    assert kept(model) == {"latest_number": 2, "version_count": 2, "archived_count": 2}


def test_an_approval_short_of_the_quorum_moves_nothing(model, owner, editor, reviewer):
    reviews.policy_update(actor=owner, model=model, required_approvals=2)
    v = good_version(model, editor)
    reviews.version_submit(actor=editor, version=v)
    reviews.review_approve(actor=reviewer, version=v)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "in_review_count": 1}


def test_a_refused_change_leaves_the_summary_as_it_was(model, editor):
    v = good_version(model, editor)
    reviews.version_submit(actor=editor, version=v)
    with pytest.raises(Conflict, match="only drafts"):
        reviews.version_submit(actor=editor, version=v)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "in_review_count": 1}


def test_mlflow_delete_keeps_the_summary(model, editor):
    factories.version(model, editor)
    v2 = factories.version(model, editor)
    mlflow_services.version_delete_with_aliases(actor=editor, version=v2)
    assert kept(model) == {"latest_number": 1, "version_count": 1, "draft_count": 1}


def test_deleting_a_model_takes_its_summary_with_it(model, owner, editor):
    other = factories.registered_model(owner, "other")
    factories.version(other, owner)
    factories.version(model, editor)
    services.model_delete(actor=owner, model=model)
    assert kept(other) == {"latest_number": 1, "version_count": 1, "draft_count": 1}


def test_recompute_sets_what_the_versions_say(model, editor):
    factories.version(model, editor)
    factories.version(model, editor)
    RegisteredModel.objects.filter(pk=model.pk).update(latest_number=9, draft_count=0)
    assert summary.wrong_counts().get() == model
    assert summary.recompute([model.pk]) == 1
    assert kept(model) == {"latest_number": 2, "version_count": 2, "draft_count": 2}


@pytest.mark.parametrize(
    ("column", "change", "says"),
    [
        ("in_review_count", 1, "in_review_count 1 (the versions say 0)"),
        ("version_count", -1, "version_count 0 (the versions say 1)"),
        ("latest_number", 5, "latest_number 6 (the versions say 1)"),
    ],
)
def test_check_invariants_names_a_wrong_summary(model, editor, column, change, says):
    factories.version(model, editor)
    assert invariants.check_summaries() == []
    RegisteredModel.objects.filter(pk=model.pk).update(**{column: F(column) + change})
    assert [str(v) for v in invariants.check_summaries()] == [f"wrong_summary: fraud: {says}"]
    assert "wrong_summary" in {v.kind for v in invariants.check_all(verify_digests=False)}


def test_rejecting_on_revalidation_counts_the_version_as_rejected(model, editor, reviewer):
    v = good_version(model, editor)
    reviews.version_submit(actor=editor, version=v)
    reviews.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    reviews.review_revalidate(
        actor=reviewer, version=v, decision="reject", reason="drifted",
        content_digest=v.content_digest,
    )  # fmt: skip
    assert kept(model) == {"latest_number": 1, "version_count": 1, "rejected_count": 1}
