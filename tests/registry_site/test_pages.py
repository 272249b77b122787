import pytest
from django.urls import reverse

from registry_site import __version__
from tests import factories


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(anonymous):
    response = anonymous.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_login_page_signs_in_and_shows_dashboard(client):
    factories.user("dana")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    response = client.post(
        reverse("login"), {"username": "dana", "password": factories.PASSWORD}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Dashboard" in html
    assert "dana" in html
    assert __version__ in html  # footer carries the version


@pytest.mark.django_db
def test_wrong_password_is_refused_with_message(client):
    factories.user("dana")
    response = client.post(reverse("login"), {"username": "dana", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_logout_is_post_only(client_for, viewer):
    c = client_for(viewer)
    assert c.get(reverse("logout")).status_code == 405
    assert c.post(reverse("logout")).status_code == 302
    assert c.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_admin_link_only_for_staff(client_for, viewer, superuser):
    assert reverse("admin:index") not in client_for(viewer).get("/").content.decode()
    assert reverse("admin:index") in client_for(superuser).get("/").content.decode()


@pytest.mark.django_db
def test_admin_user_management_available_to_superuser(client_for, superuser):
    c = client_for(superuser)
    assert c.get(reverse("admin:auth_user_changelist")).status_code == 200
    assert c.get(reverse("admin:auth_group_changelist")).status_code == 200


@pytest.mark.django_db
def test_not_found_page_uses_site_layout(client_for, viewer):
    response = client_for(viewer).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html
    assert "registry.css" in html


@pytest.mark.django_db
def test_pages_carry_strict_content_security_policy(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_dashboard_counts_only_visible_models(client_for, owner, viewer, assert_constant_queries):
    visible = factories.registered_model(owner, "shared-model")
    factories.grant(viewer, visible, "view")
    hidden = factories.registered_model(owner, "secret-model")
    factories.version(hidden, owner)
    c = client_for(viewer)

    def get():
        response = c.get(reverse("home"))
        assert response.status_code == 200
        return response

    html = get().content.decode()
    assert "shared-model" in html
    assert "secret-model" not in html
    assert "<strong>1</strong> model" in html

    def grow():
        for i in range(5):
            m = factories.registered_model(owner, f"more-{i}")
            factories.grant(viewer, m, "view")
            factories.version(m, owner)

    assert_constant_queries(get, grow)
