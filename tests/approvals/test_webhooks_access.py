"""Who may reach webhook pages: managers of the model; superusers for global subscriptions.

Model-scoped routes are also in the permission matrix (tests/approvals/webhook_matrix.py); the
global ones are STAFF routes, which the matrix skips, so their persona table is here.
"""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from approvals import webhooks
from approvals.models import Webhook, WebhookDelivery
from tests import factories
from tests.test_permission_matrix import without_nonce

pytestmark = pytest.mark.django_db
PUBLIC = "https://93.184.216.34/hook"


@pytest.fixture
def hooks(model, owner, superuser):
    mine = webhooks.webhook_create(actor=owner, model=model, url=PUBLIC, events=["all"])[0]
    everyone = webhooks.webhook_create(actor=superuser, model=None, url=PUBLIC, events=["all"])[0]
    return mine, everyone


def model_routes(hook, delivery):
    s, pk = hook.model.slug, hook.pk
    return [
        ("get", reverse("approvals:webhooks", args=[s])),
        ("post", reverse("approvals:webhooks", args=[s])),
        ("get", reverse("approvals:webhook_detail", args=[s, pk])),
        ("post", reverse("approvals:webhook_edit", args=[s, pk])),
        ("post", reverse("approvals:webhook_test", args=[s, pk])),
        ("post", reverse("approvals:webhook_redeliver", args=[s, pk, delivery.pk])),
        ("post", reverse("approvals:webhook_delete", args=[s, pk])),
    ]


def global_routes(hook, delivery):
    pk = hook.pk
    return [
        ("get", reverse("approvals:global_webhooks")),
        ("post", reverse("approvals:global_webhooks")),
        ("get", reverse("approvals:global_webhook_detail", args=[pk])),
        ("post", reverse("approvals:global_webhook_edit", args=[pk])),
        ("post", reverse("approvals:global_webhook_test", args=[pk])),
        ("post", reverse("approvals:global_webhook_redeliver", args=[pk, delivery.pk])),
        ("post", reverse("approvals:global_webhook_delete", args=[pk])),
    ]


def statuses(client, routes) -> set[int]:
    return {getattr(client, method)(url).status_code for method, url in routes}


def test_model_webhooks_outsider_404_viewer_and_editor_403_manager_allowed(
    client_for, hooks, owner, outsider, viewer, editor, reviewer, promoter
):
    mine, _ = hooks
    delivery = webhooks.webhook_send_test(actor=owner, webhook=mine)
    routes = model_routes(mine, delivery)
    assert statuses(client_for(outsider), routes) == {404}
    for persona in (viewer, editor, reviewer, promoter):
        assert statuses(client_for(persona), routes) == {403}, persona
    assert statuses(Client(), routes) == {302}  # to the login page
    assert Webhook.objects.filter(pk=mine.pk).exists()  # nothing above got through
    assert WebhookDelivery.objects.count() == 1
    assert statuses(client_for(owner), routes[:1]) == {200}


def test_outsider_404_is_identical_to_a_missing_model(client_for, hooks, outsider):
    client = client_for(outsider)
    hidden = client.get(reverse("approvals:webhooks", args=["fraud"]))
    missing = client.get(reverse("approvals:webhooks", args=["no-such-model"]))
    assert hidden.status_code == missing.status_code == 404
    assert without_nonce(hidden.content) == without_nonce(missing.content)


def test_global_webhooks_are_for_superusers_only_and_a_plain_404_for_others(
    client_for, hooks, owner, outsider, viewer, superuser
):
    _, everyone = hooks
    delivery = webhooks.webhook_send_test(actor=superuser, webhook=everyone)
    routes = global_routes(everyone, delivery)
    staff = factories.user("ops", is_staff=True)  # staff are not enough: every model's events
    for persona in (owner, outsider, viewer, staff):  # owner manages a model, not everything
        assert statuses(client_for(persona), routes) == {404}, persona
    assert statuses(Client(), routes) == {302}
    assert Webhook.objects.filter(pk=everyone.pk).exists()
    assert WebhookDelivery.objects.count() == 1
    assert client_for(superuser).get(routes[0][1]).status_code == 200
    assert client_for(superuser).get(routes[2][1]).status_code == 200
    page_404 = client_for(owner).get(routes[0][1])
    missing = client_for(owner).get("/no-such-page/")
    assert without_nonce(page_404.content) == without_nonce(missing.content)


def test_staff_without_the_manage_role_cannot_reach_a_models_webhooks(client_for, hooks):
    mine, _ = hooks
    staff = factories.user("ops", is_staff=True)
    response = client_for(staff).get(reverse("approvals:webhooks", args=[mine.model.slug]))
    assert response.status_code == 404


def test_a_webhook_is_only_found_in_its_own_scope(client_for, hooks, owner, superuser):
    mine, everyone = hooks
    other = factories.registered_model(owner, "other")
    theirs = webhooks.webhook_create(actor=owner, model=other, url=PUBLIC, events=["all"])[0]
    client = client_for(superuser)
    assert (
        client.get(reverse("approvals:webhook_detail", args=["fraud", mine.pk])).status_code == 200
    )
    assert (
        client.get(reverse("approvals:webhook_detail", args=["fraud", theirs.pk])).status_code
        == 404
    )
    assert (
        client.get(reverse("approvals:webhook_detail", args=["fraud", everyone.pk])).status_code
        == 404
    )
    assert client.get(reverse("approvals:global_webhook_detail", args=[mine.pk])).status_code == 404
    assert (
        client.post(reverse("approvals:global_webhook_delete", args=[mine.pk])).status_code == 404
    )
    assert Webhook.objects.count() == 3


def test_services_check_roles_themselves(model, owner, viewer, editor):
    with pytest.raises(PermissionDenied, match="manage role"):
        webhooks.webhook_create(actor=editor, model=model, url=PUBLIC, events=["all"])
    with pytest.raises(PermissionDenied, match="Only superusers"):
        webhooks.webhook_create(actor=owner, model=None, url=PUBLIC, events=["all"])
    staff = factories.user("ops", is_staff=True)
    with pytest.raises(PermissionDenied, match="Only superusers"):
        webhooks.webhook_create(actor=staff, model=None, url=PUBLIC, events=["all"])
    hook = webhooks.webhook_create(actor=owner, model=model, url=PUBLIC, events=["all"])[0]
    for call in (
        lambda: webhooks.webhook_update(actor=viewer, webhook=hook, url=PUBLIC, events=["all"],
                                        active=True),
        lambda: webhooks.webhook_delete(actor=viewer, webhook=hook),
        lambda: webhooks.webhook_send_test(actor=viewer, webhook=hook),
    ):  # fmt: skip
        with pytest.raises(PermissionDenied):
            call()
    assert Webhook.objects.count() == 1 and not WebhookDelivery.objects.exists()
