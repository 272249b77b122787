import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_user_signs_in_and_sees_dashboard(page, live_server, sign_in, shots):
    factories.user("dana", first_name="Dana")
    sign_in(page, "dana", factories.PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator(".whoami")).to_have_text("dana")
    path = shots(page, "dashboard")
    assert path.stat().st_size > 1000


def test_wrong_password_stays_on_login_with_message(page, live_server, sign_in):
    factories.user("dana")
    sign_in(page, "dana", "wrong-password-here")
    expect(page.locator(".form-errors")).to_contain_text("correct username and password")
    assert "/accounts/login/" in page.url


def test_phone_width_shows_menu_toggle(browser, live_server, sign_in, shots):
    factories.user("dana")
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    sign_in(page, "dana", factories.PASSWORD)
    expect(page.locator(".mainnav")).to_be_hidden()
    page.click(".nav-toggle-label")
    expect(page.locator(".mainnav")).to_be_visible()
    shots(page, "phone-menu")
    context.close()
