"""Rows of the permission matrix for the webhook pages (see tests/test_permission_matrix.py).

Only the model-scoped routes are here: the global ones (``approvals:global_webhook*``) are
declared STAFF, which the matrix leaves out like the admin; their persona table is
test_global_webhook_pages_are_for_staff_only in tests/approvals/test_webhooks_access.py.
"""

from django.utils import timezone

from approvals.models import Webhook, WebhookDelivery
from models_app.access import Role
from tests.matrix_rules import M, R

PUBLIC_URL = "https://93.184.216.34/hooks/registry"  # an IP literal: no DNS in the matrix


def hook(world) -> Webhook:
    """A subscription of the matrix model (made inside each persona's rolled-back request)."""
    found = Webhook.objects.filter(model=world.model).first()
    if found is not None:
        return found
    return Webhook.objects.create(
        model=world.model, url=PUBLIC_URL, events=["all"], secret="s" * 32,
        created_by=world.users["manager"],
    )  # fmt: skip


def delivery(world) -> WebhookDelivery:
    import uuid

    now = timezone.now()
    return WebhookDelivery.objects.create(
        uuid=uuid.uuid4(), webhook=hook(world), event="ping", payload={"event": "ping"},
        created_at=now, next_attempt_at=now,
    )  # fmt: skip


H = lambda w, u: [w.model.slug, hook(w).pk]  # noqa: E731

ROUTES: dict = {
    "approvals:webhooks": [
        R(Role.MANAGE, args=M),
        R(Role.MANAGE, "post", args=M, data={"url": PUBLIC_URL, "events": ["all"]}),
    ],
    "approvals:webhook_detail": R(Role.MANAGE, args=H),
    "approvals:webhook_edit": R(
        Role.MANAGE, "post", args=H, data={"url": PUBLIC_URL, "events": ["alias.moved"]}
    ),
    "approvals:webhook_delete": R(Role.MANAGE, "post", args=H),
    "approvals:webhook_test": R(Role.MANAGE, "post", args=H),
    "approvals:webhook_redeliver": R(
        Role.MANAGE, "post", args=lambda w, u: [w.model.slug, hook(w).pk, delivery(w).pk]
    ),
}
