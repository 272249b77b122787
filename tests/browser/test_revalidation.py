"""An approval that expires: production's version shows "revalidation due" on the model page
and in the reviewer's inbox; the reviewer revalidates it on the same content from the review
page, and the flag is gone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals import services
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reviewer_revalidates_an_expired_approval(
    browser, live_server, sign_in, shots, monkeypatch
):
    dana, rita, pat = factories.user("dana"), factories.user("rita"), factories.user("pat")
    model = factories.registered_model(dana, "fraud-scorer")
    for user, role in ((rita, "review"), (pat, "promote")):
        factories.grant(user, model, role)
    services.policy_update(actor=dana, model=model, required_approvals=1, approval_valid_days=30)
    v1 = factories.version(model, dana, description="baseline", files={"m.bin": b"v1"},
                           metrics=[{"name": "auc", "value": 0.88, "split": "test"}],
                           datasets=[{"name": "tx-2025", "role": "train"}])  # fmt: skip
    services.version_submit(actor=dana, version=v1)
    services.review_approve(actor=rita, version=v1)
    v1.refresh_from_db()
    services.alias_set(actor=pat, model=model, name="production", version=v1)

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(days=31))
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, "rita", factories.PASSWORD)

    page.goto(f"{live_server.url}{model.get_absolute_url()}")
    expect(page.locator("#aliases .pill.due")).to_have_text("revalidation due")
    shots(page, "1-model-page-due")

    page.goto(f"{live_server.url}/reviews/")
    due = page.locator("#revalidation-due")
    expect(due).to_contain_text("fraud-scorer v1")
    shots(page, "2-inbox")
    due.get_by_role("link", name="Revalidate").click()
    expect(page.locator("#revalidation")).to_contain_text("revalidation due")
    page.fill("#id_revalidate_reason", "Checked against Q3 data: still fits.")
    shots(page, "3-review-page")
    page.get_by_role("button", name="Revalidate").click()
    expect(page.locator(".message.success")).to_contain_text("You revalidated version 1")
    expect(page.locator("#revalidation .pill.due")).to_have_count(0)
    expect(page.locator("#decide")).to_contain_text("revalidation 1")
    shots(page, "4-revalidated")

    page.goto(f"{live_server.url}{model.get_absolute_url()}")
    expect(page.locator(".pill.due")).to_have_count(0)
    v1.refresh_from_db()
    assert v1.review_round == 1 and v1.content_digest
