"""The navigation's review badge and the inbox's count: what waits for me, read from the
models' in-review counters (approvals.selectors.waiting_count), equal to counting the versions
(versions_waiting_for) in every case that the counting leaves out, in two queries whatever the
size (one for a superuser)."""

import re

import pytest
from django.urls import reverse

from approvals import selectors, services
from models_app.models import ModelVersion
from tests import factories
from tests.approvals.conftest import good_version
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(model, owner, editor, reviewer, reviewer2):
    """In the model the reviewers may review: one version each way of (not) waiting for
    ``reviewer``; in another model nobody granted them, one in review."""
    factories.grant(reviewer, model, "edit")
    services.policy_update(actor=owner, model=model, required_approvals=2)

    def submitted(author, submitter, auc):
        v = good_version(model, author, auc=auc)
        services.version_submit(actor=submitter, version=v)
        return v

    submitted(editor, editor, 0.90)  # waits
    submitted(reviewer, editor, 0.91)  # registered by the reviewer: not for them
    submitted(editor, reviewer, 0.92)  # submitted by the reviewer: not for them
    reviewed = submitted(editor, editor, 0.93)  # reviewed by them already (quorum is 2)
    services.review_approve(actor=reviewer, version=reviewed)
    again = submitted(editor, editor, 0.94)  # reviewed, withdrawn, sent again: waits again
    services.review_approve(actor=reviewer, version=again)
    services.version_withdraw(actor=editor, version=again)
    services.version_submit(actor=editor, version=again)
    good_version(model, editor, auc=0.95)  # a draft waits for nobody
    elsewhere = factories.registered_model(owner, "elsewhere")
    services.version_submit(actor=owner, version=good_version(elsewhere, owner))


def test_the_badge_counts_what_the_inbox_lists(
    waiting, client_for, reviewer, reviewer2, editor, owner, viewer, superuser
):
    for user in (reviewer, reviewer2, editor, owner, viewer, superuser):
        assert selectors.waiting_count(user) == selectors.versions_waiting_for(user).count()
    assert [selectors.waiting_count(u) for u in (reviewer, reviewer2, superuser)] == [2, 5, 6]
    assert selectors.waiting_count(editor) == selectors.waiting_count(viewer) == 0
    html = client_for(reviewer).get(reverse("approvals:inbox")).content.decode()
    assert re.search(r'<span class="badge"[^>]*>2</span>', html)
    listed = re.findall(r"fraud v(\d+)", html.split("submitted")[0])
    assert listed and set(listed) <= {"1", "5"}


def test_a_signed_out_visitor_has_no_badge(anonymous):
    html = anonymous.get(reverse("login")).content.decode()
    assert 'class="badge"' not in html


def test_the_badge_is_two_queries_whatever_waits(model, editor, reviewer, owner, superuser):
    """The reviewer's models' ids, then the count over them; a superuser's count alone."""

    def badge():
        selectors.waiting_count(reviewer)

    first = count_queries(badge)
    first_superuser = count_queries(lambda: selectors.waiting_count(superuser))
    for auc in (0.90, 0.91, 0.92):
        services.version_submit(actor=editor, version=good_version(model, editor, auc=auc))
    other = factories.registered_model(owner, "other")
    factories.grant(reviewer, other, "review")
    services.version_submit(actor=owner, version=good_version(other, owner))
    assert count_queries(badge) == first == 2
    assert count_queries(lambda: selectors.waiting_count(superuser)) == first_superuser == 1
    assert selectors.waiting_count(reviewer) == 4


def test_pages_pin_their_query_counts(client_for, model, editor, reviewer, owner):
    """The dashboard, the model list (each sort), the inbox: the same number of queries with
    one model and version as with many."""
    c = client_for(reviewer)
    pages = [
        reverse("home"),
        reverse("approvals:inbox"),
        *(f"{reverse('models_app:model_list')}?sort={s}" for s in ("name", "-latest")),
        f"{reverse('models_app:model_list')}?sort=-updated_at&status=in_review",
        f"{reverse('models_app:model_list')}?sort=-created_at&q=fraud",
    ]
    services.version_submit(actor=editor, version=good_version(model, editor))

    def counts():
        found = []
        for page in pages:
            c.get(page)  # (warm: sessions, content types)
            found.append(count_queries(lambda page=page: c.get(page)))
        return found

    small = counts()
    for i in range(30):
        m = factories.registered_model(owner, f"more-{i}", visibility="internal")
        factories.grant(reviewer, m, "review")
        services.version_submit(actor=owner, version=good_version(m, owner))
    assert counts() == small
    # Session and user, the badge (the reviewer's models, then the count), then the page's
    # own: dashboard 4, inbox 4 (its count is the badge's), model list 3.
    assert small == [8, 8, 7, 7, 7, 7]
    assert ModelVersion.objects.filter(status="in_review").count() == 31
