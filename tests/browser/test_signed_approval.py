"""A reviewer signs an approval on the review page: a wrong password is refused with the form
shown again and nothing recorded; then the password and a meaning sign it, and the review shows
the signature's manifestation (printed name, database time in UTC, meaning).

Screenshots go to test-results/browser/<test>/; the last one of the decision card is the picture
in docs/signatures.md (docs/img/signed-approval.png, copied from there)."""

import pytest
from playwright.sync_api import expect

from approvals import services
from approvals.models import Review, Signature
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reviewer_signs_an_approval(browser, live_server, sign_in, shots):
    dana = factories.user("dana", first_name="Dana", last_name="Scientist")
    rita = factories.user("rita", first_name="Rita", last_name="Reviewer")
    model = factories.registered_model(dana, "fraud-scorer", signatures=True)
    factories.grant(rita, model, "review")
    version = factories.version(
        model, dana, description="Retrained on Q1 2026", files={"model.onnx": b"onnx-weights"},
        metrics=[{"name": "auc", "value": 0.91, "split": "test"}],
        datasets=[{"name": "tx-2026q1", "role": "train"}],
    )  # fmt: skip
    services.version_submit(actor=dana, version=version)

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, "rita", factories.PASSWORD)
    page.goto(f"{live_server.url}{version.get_absolute_url()}review/")
    decide = page.locator("#decide")
    expect(decide).to_contain_text(
        "By entering your password you sign this decision as Rita Reviewer"
    )
    expect(page.locator("#id_approve_password")).to_have_attribute(
        "autocomplete", "current-password"
    )
    shots(page, "1-review-page")

    # A wrong password: refused, the form again, nothing recorded.
    page.select_option("#id_approve_meaning", "Reviewed — technical")
    page.fill("#id_approve_password", "not-my-password")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".message.error")).to_contain_text("That password is not correct")
    expect(page.locator("#id_approve_password")).to_be_visible()
    assert not Review.objects.exists() and not Signature.objects.exists()
    shots(page, "2-wrong-password")

    # The right one signs.
    page.select_option("#id_approve_meaning", "Reviewed — technical")
    page.fill("#id_approve_reason", "AUC 0.91 on the Q1 holdout; card complete.")
    page.fill("#id_approve_password", factories.PASSWORD)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".message.success")).to_contain_text("You approved version 1")
    signature = Signature.objects.get()
    line = page.locator(".signature-line")
    expect(line).to_have_text(
        f"Signed by Rita Reviewer, {signature.signed_at:%Y-%m-%d %H:%M:%S} UTC — "
        "Reviewed — technical"
    )
    shots(page, "3-signed")
    folder = shots(page, "3-signed").parent
    decide.screenshot(path=str(folder / "signed-approval.png"))
