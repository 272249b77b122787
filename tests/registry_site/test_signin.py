import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_sign_in_success_and_failure_are_audited_with_address(client):
    dana = factories.user("dana")
    login(client, "dana", "wrong")
    login(client, "dana", factories.PASSWORD)
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert failed.target_id == str(dana.pk)  # the account, never the text typed
    assert "username" not in failed.after
    assert failed.ip_address == "10.0.0.1"
    assert AuditEvent.objects.get(action="auth.signed_in").actor_username == "dana"


def test_repeated_failures_for_a_username_are_throttled(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    factories.user("dana")
    for i in range(3):
        login(client, "dana", "wrong", ip=f"10.0.0.{i}")  # attacker changes address
    response = login(client, "dana", factories.PASSWORD, ip="10.0.0.99")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()


def test_repeated_failures_from_an_address_are_throttled(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("a", "b", "c"):
        factories.user(name)
        login(client, name, "wrong", ip="10.9.9.9")  # attacker changes username
    factories.user("dana")
    assert login(client, "dana", factories.PASSWORD, ip="10.9.9.9").status_code == 429
    assert login(client, "dana", factories.PASSWORD, ip="10.1.1.1").status_code == 302


def test_lockout_ends_after_the_cool_off(client, settings, monkeypatch):
    from datetime import timedelta

    from axes.models import AccessAttempt

    settings.AXES_FAILURE_LIMIT = 2
    factories.user("dana")
    login(client, "dana", "wrong")
    login(client, "dana", "wrong")
    assert login(client, "dana", factories.PASSWORD).status_code == 429
    # Age the failures past the cool-off instead of sleeping.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time
        - settings.AXES_COOLOFF_TIME
        - timedelta(seconds=1)
    )
    assert login(client, "dana", factories.PASSWORD).status_code == 302


def test_new_passwords_need_twelve_characters(client_for, viewer):
    response = client_for(viewer).post(
        reverse("password_change"),
        {
            "old_password": factories.PASSWORD,
            "new_password1": "short-pw1",
            "new_password2": "short-pw1",
        },
    )
    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
