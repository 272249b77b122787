import base64
from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.chain import verify_chain
from audit.models import AuditEvent, FailedSignIn
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


def login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def stored_text() -> str:
    """Everything the failure counts and the audit log hold, as one string."""
    rows = [*FailedSignIn.objects.values_list(), *AuditEvent.objects.values_list()]
    return repr(rows)


def test_failures_with_unknown_names_are_counted_without_chained_events_or_names(client, settings):
    settings.AXES_FAILURE_LIMIT = 100
    for i in range(50):
        login(client, f"hunter2-secret-{i}", "wrong")
    for i in range(5):  # another few addresses
        login(client, f"hunter2-secret-x{i}", "wrong", ip=f"10.2.0.{i}")
    assert AuditEvent.objects.count() == 0
    assert FailedSignIn.objects.count() == 6
    counted = FailedSignIn.objects.get(address="10.0.0.1")
    assert counted.failures == 50
    assert counted.user is None
    assert "hunter2" not in stored_text()


def test_failures_for_a_known_account_leave_one_chained_event_per_hour(client, settings):
    settings.AXES_FAILURE_LIMIT = 100
    dana = factories.user("dana")
    for i in range(6):
        login(client, "dana", "wrong", ip=f"10.0.0.{i % 3}")
    event = AuditEvent.objects.get()
    assert event.action == "auth.sign_in_failed"
    assert event.target_id == str(dana.pk)
    assert event.ip_address == "10.0.0.0"
    assert "wrong" not in stored_text()
    assert sorted(FailedSignIn.objects.values_list("address", "failures")) == [
        ("10.0.0.0", 2),
        ("10.0.0.1", 2),
        ("10.0.0.2", 2),
    ]
    assert set(FailedSignIn.objects.values_list("user", flat=True)) == {dana.pk}
    assert verify_chain().ok


def test_nothing_is_written_while_locked_out(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    factories.user("dana")
    for _ in range(3):
        login(client, "dana", "wrong")
    before = (stored_text(), list(AccessAttempt.objects.values_list()))
    for attempt in ("wrong", factories.PASSWORD, "other"):
        assert login(client, "dana", attempt).status_code == 429
        assert login(client, f"garbage-{attempt}", attempt).status_code == 429  # address locked
    basic = base64.b64encode(b"dana:wrong").decode()
    response = Client(HTTP_AUTHORIZATION=f"Basic {basic}", REMOTE_ADDR="10.0.0.1").get(
        f"{API}/registered-models/search"
    )
    assert response.status_code == 401
    assert (stored_text(), list(AccessAttempt.objects.values_list())) == before


def test_bad_tokens_write_nothing(client):
    factories.user("dana")
    bearer = Client(HTTP_AUTHORIZATION="Bearer mrt_0123456789ab_not-a-secret")
    assert bearer.get(f"{API}/registered-models/search").status_code == 401
    basic = base64.b64encode(b"dana:mrt_0123456789ab_not-a-secret").decode()
    response = Client(HTTP_AUTHORIZATION=f"Basic {basic}").get(f"{API}/registered-models/search")
    assert response.status_code == 401
    assert stored_text() == "[]"


def test_a_successful_sign_in_is_still_audited(client):
    factories.user("dana")
    assert login(client, "dana", factories.PASSWORD).status_code == 302
    assert AuditEvent.objects.get().action == "auth.signed_in"


def test_pruning_removes_only_old_counts():
    now = timezone.now()

    def count(age_days: int, address: str) -> FailedSignIn:
        at = now - timedelta(days=age_days)
        return FailedSignIn.objects.create(
            window_start=at.replace(minute=0, second=0, microsecond=0),
            address=address,
            first_at=at,
            last_at=at,
        )

    count(40, "10.0.0.1")
    count(31, "10.0.0.2")
    kept = {count(29, "10.0.0.3").pk, count(0, "10.0.0.4").pk}
    out = StringIO()
    call_command("prune_failed_sign_ins", "--older-than-days", "30", stdout=out)
    assert set(FailedSignIn.objects.values_list("pk", flat=True)) == kept
    assert out.getvalue().strip() == "Deleted 2 failed sign-in count(s) older than 30 day(s)."


def test_pruning_refuses_a_zero_age():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("prune_failed_sign_ins", "--older-than-days", "0")
