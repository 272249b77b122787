"""The whole review story: register and submit; reviewer A compares, comments, approves;
reviewer B approves (quorum 2); a promoter moves production and rolls it back; the audit page
shows every step in order; the chain verifies."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from approvals import services
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_register_review_promote_rollback_audit(browser, live_server, sign_in, shots, tmp_path):
    dana = factories.user("dana")
    rita, ravi, pat = factories.user("rita"), factories.user("ravi"), factories.user("pat")
    model = factories.registered_model(dana, "fraud-scorer")
    for user, role in ((rita, "review"), (ravi, "review"), (pat, "promote")):
        factories.grant(user, model, role)
    services.policy_update(actor=dana, model=model, required_approvals=2)
    # v1 is already in production, so the review compares against it.
    v1 = factories.version(model, dana, description="baseline", files={"m.bin": b"v1"},
                           metrics=[{"name": "auc", "value": 0.88, "split": "test"}],
                           datasets=[{"name": "tx-2025", "role": "train"}])  # fmt: skip
    services.version_submit(actor=dana, version=v1)
    services.review_approve(actor=rita, version=v1)
    services.review_approve(actor=ravi, version=v1)
    v1.refresh_from_db()
    services.alias_set(actor=pat, model=model, name="production", version=v1)
    base = f"{live_server.url}{model.get_absolute_url()}"

    def page_for(username):
        p = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        p.on("dialog", lambda dialog: dialog.accept())
        sign_in(p, username, factories.PASSWORD)
        return p

    # The data scientist registers v2 and submits it.
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"v2-weights")
    d = page_for("dana")
    d.goto(base + "versions/new/")
    d.set_input_files("#id_files", str(weights))
    d.fill("#id_description", "Retrained on Q1 2026")
    d.fill("[name=metrics-0-name]", "auc")
    d.fill("[name=metrics-0-value]", "0.91")
    d.fill("[name=metrics-0-split]", "test")
    d.fill("[name=datasets-0-name]", "tx-2026q1")
    d.get_by_role("button", name="Register version").click()
    expect(d.locator("h1")).to_contain_text("fraud-scorer v2")
    d.get_by_role("button", name="Submit for review").click()
    expect(d.locator(".message.success")).to_contain_text("submitted for review")
    shots(d, "1-submitted")

    # Reviewer A: inbox, compare with production, comment, approve.
    a = page_for("rita")
    a.goto(f"{live_server.url}/reviews/")
    expect(a.locator(".mainnav .badge")).to_have_text("1")
    a.locator("#waiting").get_by_role("link", name="Review", exact=True).click()
    expect(a.locator("#metrics")).to_contain_text("against production v1")
    expect(a.locator("#metrics .delta-better")).to_be_visible()
    a.fill("#id_body", "AUC up 0.03 on the same holdout: good.")
    a.select_option("#id_metric", "auc")
    a.get_by_role("button", name="Comment").click()
    expect(a.locator("#comments")).to_contain_text("AUC up 0.03")
    shots(a, "2-reviewer-a")
    a.get_by_role("button", name="Approve").click()
    expect(a.locator(".message.success")).to_contain_text("You approved version 2")

    # Reviewer B completes the quorum.
    b = page_for("ravi")
    b.goto(base + "versions/2/review/")
    b.get_by_role("button", name="Approve").click()
    expect(b.locator("h1 .pill")).to_have_text("Approved")
    shots(b, "3-approved")

    # The promoter moves production to v2, then rolls back with a reason.
    p = page_for("pat")
    p.goto(base)
    p.fill("#id_alias", "production")
    p.select_option("#id_alias_version", "2")
    p.fill("#id_alias_note", "Q1 release")
    p.get_by_role("button", name="Move alias").click()
    expect(p.locator("#aliases")).to_contain_text("v2")
    shots(p, "4-promoted")
    p.fill("input[name=reason]", "False positives doubled in the first hour")
    p.get_by_role("button", name="Roll back to v1").click()
    expect(p.locator(".message.success")).to_contain_text("rolled back")
    expect(p.locator("#aliases tbody tr", has_text="production")).to_contain_text("v1")
    shots(p, "5-rolled-back")

    # The audit page shows every step, in order.
    p.goto(f"{live_server.url}/audit/?model={model.slug}")
    actions = p.locator("#events tbody tr td:nth-child(4)").all_inner_texts()
    story = [x for x in reversed(actions) if x in {
        "version.created", "version.submitted", "comment.added", "review.approved",
        "version.approved", "alias.moved", "alias.rolled_back"}]  # fmt: skip
    assert story[-8:] == [
        "version.created", "version.submitted", "comment.added", "review.approved",
        "review.approved", "version.approved", "alias.moved", "alias.rolled_back",
    ]  # fmt: skip
    shots(p, "6-audit")
    call_command("verify_audit")
