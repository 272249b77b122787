"""The webhook pages: subscribe, see the secret once, edit, rotate, test, redeliver, delete;
bad input explained with nothing saved; delivery log and lists at a constant query count."""

import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals import webhooks
from approvals.models import Webhook, WebhookDelivery
from audit.models import AuditEvent
from tests import factories
from tests.approvals.test_webhooks import receiver, run_worker  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
PUBLIC = "https://93.184.216.34/hooks/registry?token=abc"


def list_url(model=None):
    if model is None:
        return reverse("approvals:global_webhooks")
    return reverse("approvals:webhooks", args=[model.slug])


def hook_url(hook, name="webhook_detail", *extra):
    if hook.model_id is None:
        return reverse(f"approvals:global_{name}", args=[hook.pk, *extra])
    return reverse(f"approvals:{name}", args=[hook.model.slug, hook.pk, *extra])


def make_hook(model, owner, url=PUBLIC, events=("all",)):
    return webhooks.webhook_create(actor=owner, model=model, url=url, events=list(events))[0]


def test_manager_subscribes_and_sees_the_secret_once(client_for, model, owner):
    client = client_for(owner)
    response = client.post(
        list_url(model), {"url": PUBLIC, "events": ["version.approved", "alias.moved"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    hook = Webhook.objects.get()
    assert (hook.model, hook.url, hook.events, hook.active) == (
        model, PUBLIC, ["version.approved", "alias.moved"], True,
    )  # fmt: skip
    assert hook.created_by == owner
    html = response.content.decode()
    assert hook.secret in html and "shown <strong>only once</strong>" in html
    again = client.get(list_url(model)).content.decode()
    assert hook.secret not in again and "93.184.216.34/hooks/registry" in again
    assert hook.secret not in client.get(hook_url(hook)).content.decode()
    event = AuditEvent.objects.get(action="webhook.created")
    assert event.model == model and event.actor == owner
    assert event.after["url"] == "https://93.184.216.34/…"  # no path, no token in the log
    assert "token" not in event.target_label and hook.secret not in str(event.after)


def test_choosing_all_events_among_others_keeps_only_all(client_for, model, owner):
    client_for(owner).post(list_url(model), {"url": PUBLIC, "events": ["all", "alias.moved"]})
    assert Webhook.objects.get().events == ["all"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"url": "not a url", "events": ["all"]}, "Use an http:// or https:// URL (got no scheme)"),
        ({"url": "https://exa mple.com/x", "events": ["all"]}, "Enter a valid URL"),
        ({"url": "file:///etc/passwd", "events": ["all"]}, "Use an http:// or https:// URL (got file://)"),
        ({"url": "ftp://93.184.216.34/x", "events": ["all"]}, "(got ftp://)"),
        ({"url": "", "events": ["all"]}, "Give the URL of the receiver"),
        ({"url": "https://user:pw@93.184.216.34/", "events": ["all"]}, "Leave credentials out"),
        ({"url": PUBLIC}, "Pick at least one event, or all events."),
        ({}, "Give the URL of the receiver"),
        ({"url": PUBLIC, "events": ["version.exploded"]}, "Select a valid choice"),
        ({"url": PUBLIC, "events": ["all"], "secret": "short"}, "16 to 200 printable characters"),
        ({"url": "http://127.0.0.1/hook", "events": ["all"]}, "127.0.0.1 is a loopback address"),
        ({"url": "http://localhost/hook", "events": ["all"]}, "localhost is not a public address"),
        ({"url": "http://169.254.169.254/latest/meta-data/", "events": ["all"]}, "link-local"),
        ({"url": "http://10.0.0.1/hook", "events": ["all"]}, "10.0.0.1 is a private address"),
    ],
)  # fmt: skip
def test_bad_input_is_explained_and_nothing_is_saved(client_for, model, owner, data, message):
    client = client_for(owner)
    events_before = AuditEvent.objects.count()
    response = client.post(list_url(model), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert 'role="alert"' in html
    assert Webhook.objects.count() == 0
    assert AuditEvent.objects.count() == events_before


def test_the_allow_list_lets_an_on_prem_receiver_be_subscribed(client_for, model, owner, settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["10.0.0.0/8"]
    response = client_for(owner).post(
        list_url(model), {"url": "http://10.0.0.1/h", "events": ["all"]}
    )
    assert response.status_code == 200 and Webhook.objects.count() == 1


def test_edit_changes_events_and_pauses(client_for, model, owner):
    hook = make_hook(model, owner)
    response = client_for(owner).post(
        hook_url(hook, "webhook_edit"), {"url": PUBLIC, "events": ["alias.rolled_back"]}
    )
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.events == ["alias.rolled_back"] and not hook.active
    event = AuditEvent.objects.get(action="webhook.updated")
    assert event.before["events"] == ["all"] and event.after["active"] is False


def test_bad_edit_is_explained_and_changes_nothing(client_for, model, owner):
    hook = make_hook(model, owner)
    response = client_for(owner).post(
        hook_url(hook, "webhook_edit"), {"url": "file:///etc/shadow", "events": [], "active": "on"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "(got file://)" in html and "Pick at least one event" in html
    hook.refresh_from_db()
    assert hook.url == PUBLIC and hook.events == ["all"]
    assert not AuditEvent.objects.filter(action="webhook.updated").exists()


def test_rotating_the_secret_shows_the_new_one_once(client_for, model, owner):
    hook = make_hook(model, owner)
    old = hook.secret
    response = client_for(owner).post(
        hook_url(hook, "webhook_edit"),
        {"url": PUBLIC, "events": ["all"], "active": "on", "rotate_secret": "on"},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret in response.content.decode()
    assert AuditEvent.objects.get(action="webhook.updated").after["secret"] == "rotated"


def test_send_test_event_and_redeliver_through_the_page(receiver, client_for, model, owner):  # noqa: F811
    client = client_for(owner)
    client.post(list_url(model), {"url": receiver.url, "events": ["alias.moved"]})
    hook = Webhook.objects.get()
    response = client.post(hook_url(hook, "webhook_test"))
    assert response.status_code == 302 and response["Location"] == hook_url(hook)
    assert "A ping is queued" in client.get(hook_url(hook)).content.decode()
    run_worker()
    ping = WebhookDelivery.objects.get()
    assert ping.event == "ping" and ping.status == WebhookDelivery.Status.DELIVERED
    response = client.post(hook_url(hook, "webhook_redeliver", ping.pk))
    assert response.status_code == 302
    run_worker()
    assert [r.headers["X-Registry-Event"] for r in receiver.requests] == ["ping", "ping"]
    assert WebhookDelivery.objects.filter(redelivery_of=ping).count() == 1


def test_delete_removes_the_subscription_and_its_log(client_for, model, owner):
    hook = make_hook(model, owner)
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    response = client_for(owner).post(hook_url(hook, "webhook_delete"))
    assert response.status_code == 302 and response["Location"] == list_url(model)
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    assert (
        AuditEvent.objects.get(action="webhook.deleted").before["url"] == "https://93.184.216.34/…"
    )


def test_actions_refuse_get(client_for, model, owner):
    hook = make_hook(model, owner)
    delivery = webhooks.webhook_send_test(actor=owner, webhook=hook)
    client = client_for(owner)
    for name, extra in (
        ("webhook_edit", ()), ("webhook_delete", ()), ("webhook_test", ()),
        ("webhook_redeliver", (delivery.pk,)),
    ):  # fmt: skip
        assert client.get(hook_url(hook, name, *extra)).status_code == 405, name
    assert Webhook.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_redelivering_another_webhooks_delivery_is_404(client_for, model, owner):
    mine, theirs = make_hook(model, owner), make_hook(model, owner)
    delivery = webhooks.webhook_send_test(actor=owner, webhook=theirs)
    response = client_for(owner).post(hook_url(mine, "webhook_redeliver", delivery.pk))
    assert response.status_code == 404
    assert WebhookDelivery.objects.count() == 1


def test_model_page_shows_the_webhooks_button_to_managers_only(client_for, model, owner, viewer):
    button = f'href="{list_url(model)}"'
    assert button in client_for(owner).get(model.get_absolute_url()).content.decode()
    assert button not in client_for(viewer).get(model.get_absolute_url()).content.decode()


def test_audit_page_links_global_webhooks_for_superusers_only(client_for, owner, superuser):
    staff = factories.user("ops", is_staff=True)
    link = f'href="{list_url()}"'
    audit = reverse("approvals:audit")
    assert link not in client_for(staff).get(audit).content.decode()
    assert link in client_for(superuser).get(audit).content.decode()
    assert link not in client_for(owner).get(audit).content.decode()


def test_superusers_manage_global_webhooks(client_for, superuser):
    client = client_for(superuser)
    response = client.post(list_url(), {"url": PUBLIC, "events": ["version.approved"]})
    assert response.status_code == 200
    hook = Webhook.objects.get()
    assert hook.model is None and hook.secret in response.content.decode()
    assert client.get(hook_url(hook)).status_code == 200
    assert client.post(hook_url(hook, "webhook_test")).status_code == 302
    assert client.post(hook_url(hook, "webhook_delete")).status_code == 302
    assert not Webhook.objects.exists()
    assert AuditEvent.objects.filter(action__startswith="webhook.", model=None).count() == 3


# ---------------------------------------------------------------------------------------------
# Query counts


def _deliveries(hook, n):
    now = timezone.now()
    S = WebhookDelivery.Status
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uuid=uuid.uuid4(),
            webhook=hook,
            event="version.created",
            payload={"i": i},
            status=[S.DELIVERED, S.FAILED, S.PENDING][i % 3],
            attempts=i % 8,
            response_status=200,
            duration_ms=12,
            last_error="HTTP 500" if i % 3 == 1 else "",
            created_at=now,
            next_attempt_at=now if i % 3 == 2 else None,
        )  # fmt: skip
        for i in range(n)
    )


def test_delivery_log_query_count_is_constant(client_for, model, owner, assert_constant_queries):
    hook = make_hook(model, owner)
    _deliveries(hook, 3)
    client = client_for(owner)

    def page():
        response = client.get(hook_url(hook), {"page": 2})
        assert response.status_code == 200

    count = assert_constant_queries(page, lambda: _deliveries(hook, 300))
    html = client.get(hook_url(hook), {"page": 2}).content.decode()
    assert "Page 2 of 13" in html
    assert len(re.findall(r"<tr>", html.split('id="deliveries"')[1])) == 26  # head + 25 rows
    assert count <= 12


def test_webhook_lists_query_counts_are_constant(
    client_for, model, owner, superuser, assert_constant_queries
):
    make_hook(model, owner)
    make_hook(None, superuser)

    def grow():
        made = Webhook.objects.bulk_create(
            Webhook(model=m, url=PUBLIC, events=["all"], secret="s" * 20, created_by=owner)
            for m in [model, None] * 150
        )
        for hook in made[:20]:
            _deliveries(hook, 5)

    def pages():
        for client, url in (
            (client_for(owner), list_url(model)),
            (client_for(superuser), list_url()),
        ):
            response = client.get(url)
            assert response.status_code == 200

    assert_constant_queries(pages, grow)
    html = client_for(owner).get(list_url(model)).content.decode()
    assert len(re.findall(r'class="danger">Delete', html)) == 151
