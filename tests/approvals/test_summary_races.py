"""Races on PostgreSQL: the models' summary counters (models_app.summary) add up when many
versions of one model are created, submitted, decided and deleted at the same moment."""

import pytest
from django.db import connection  # noqa: F401 (used by the skipif condition)

from approvals import services
from models_app import services as catalogue
from models_app.models import RegisteredModel
from registry_site.invariants import check_summaries
from tests.approvals.conftest import good_version
from tests.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


def test_concurrent_changes_of_one_models_versions_all_count(model, editor, reviewer):
    drafts = [good_version(model, editor, auc=0.9 + i / 100) for i in range(6)]
    for v in drafts[:2]:
        services.version_submit(actor=editor, version=v)
    actions = [
        lambda: services.review_approve(actor=reviewer, version=drafts[0]),
        lambda: services.review_reject(actor=reviewer, version=drafts[1], reason="no"),
        lambda: services.version_submit(actor=editor, version=drafts[2]),
        lambda: services.version_submit(actor=editor, version=drafts[3]),
        lambda: catalogue.version_delete(actor=editor, version=drafts[5]),
        lambda: good_version(model, editor, auc=0.99),
    ]
    results = run_at_once(len(actions), lambda i: actions[i]())
    assert not [r for r in results if isinstance(r, Exception)], results
    assert check_summaries() == []
    row = RegisteredModel.objects.get(pk=model.pk)
    assert (row.version_count, row.latest_number) == (6, 7)
    assert (row.approved_count, row.rejected_count, row.in_review_count, row.draft_count) == (
        1, 1, 2, 2,
    )  # fmt: skip
