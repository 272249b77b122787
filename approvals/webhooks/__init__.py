"""Webhooks: tell deployment tools when something changes.

- ``events``: which audit actions become webhook events, payloads, the outbox write that
  ``audit.record`` calls (``enqueue_for_event``);
- ``services``: subscriptions and manual deliveries (test ping, redeliver), with audit events;
- ``guard``: the SSRF guard (public addresses only, resolved once per attempt);
- ``sender``: signing and the stdlib HTTP POST pinned to the checked address;
- ``worker``: what ``manage.py deliver_webhooks`` runs.

See docs/webhooks.md for the receiver's side.
"""

from approvals.webhooks.events import EVENTS, enqueue_for_event
from approvals.webhooks.services import (
    delivery_redeliver,
    webhook_create,
    webhook_delete,
    webhook_send_test,
    webhook_update,
)
from approvals.webhooks.worker import deliver_due
from core.errors import RateLimited

__all__ = [
    "EVENTS", "RateLimited", "deliver_due", "delivery_redeliver", "enqueue_for_event",
    "webhook_create", "webhook_delete", "webhook_send_test", "webhook_update",
]  # fmt: skip
