"""A manager shares a model with a team; a member sees it; the grant is removed; 404."""

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_share_with_team_then_remove(browser, live_server, sign_in, shots):
    manager = factories.user("maria")
    member = factories.user("tom")
    factories.team("risk-team", member)
    model = factories.registered_model(manager, "credit-limit")
    model_url = f"{live_server.url}{model.get_absolute_url()}"

    as_member = browser.new_context().new_page()
    sign_in(as_member, "tom", factories.PASSWORD)
    assert as_member.goto(model_url).status == 404

    as_manager = browser.new_context().new_page()
    sign_in(as_manager, "maria", factories.PASSWORD)
    as_manager.goto(model_url)
    as_manager.get_by_role("link", name="Sharing").click()
    as_manager.select_option("#id_kind", "team")
    as_manager.fill("#id_name", "risk-team")
    as_manager.check("input[name=roles][value=view]")
    as_manager.get_by_role("button", name="Save").click()
    expect(as_manager.locator("#grants")).to_contain_text("risk-team")
    shots(as_manager, "1-shared")

    assert as_member.goto(model_url).status == 200
    expect(as_member.locator("h1")).to_have_text("credit-limit")
    as_member.goto(f"{live_server.url}/models/")
    expect(as_member.get_by_role("link", name="credit-limit")).to_be_visible()
    shots(as_member, "2-member-sees-it")

    as_manager.on("dialog", lambda dialog: dialog.accept())
    row = as_manager.locator("#grants tr", has_text="risk-team")
    row.get_by_role("button", name="Remove").click()
    expect(as_manager.locator("#grants")).not_to_contain_text("risk-team")

    assert as_member.goto(model_url).status == 404
    shots(as_member, "3-member-gets-404")
