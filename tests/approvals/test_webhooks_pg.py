"""The worker against real concurrency (PostgreSQL): it sees only committed deliveries, and
workers running side by side never send the same delivery twice (SKIP LOCKED, claim tokens,
no attempt started that could outlast the lease)."""

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction  # noqa: F401 (skipif condition)
from django.utils import timezone

from approvals import services, webhooks
from approvals.models import Webhook, WebhookDelivery
from approvals.webhooks import worker
from tests.approvals.conftest import good_version
from tests.approvals.test_webhooks import receiver  # noqa: F401 (fixture)
from tests.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


def test_the_worker_sees_a_delivery_only_once_its_change_commits(receiver, model, owner, editor):  # noqa: F811
    webhooks.webhook_create(actor=owner, model=model, url=receiver.url, events=["all"])
    v = good_version(model, editor)
    webhooks.deliver_due()
    receiver.requests.clear()
    written, release = threading.Event(), threading.Event()

    def change():
        try:
            with transaction.atomic():
                services.version_submit(actor=editor, version=v)
                written.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=change)
    thread.start()
    assert written.wait(10)
    assert webhooks.deliver_due().attempted == 0  # written, not committed: invisible
    release.set()
    thread.join(10)
    summary = webhooks.deliver_due()
    assert summary.delivered == 1
    assert [r.json["event"] for r in receiver.requests] == ["version.submitted"]


def test_concurrent_workers_never_send_a_delivery_twice(receiver, model, owner):  # noqa: F811
    hook = webhooks.webhook_create(actor=owner, model=model, url=receiver.url, events=["all"])[0]
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uuid=uuid.uuid4(),
            webhook=hook,
            event="ping",
            payload={"n": i},
            created_at=now,
            next_attempt_at=now,
        )  # fmt: skip
        for i in range(40)
    )
    results = run_at_once(4, lambda i: webhooks.deliver_due(limit=5))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.delivered for r in results) == 40
    assert sum(1 for r in results if r.delivered) > 1  # the work was shared
    sent = Counter(r.headers["X-Registry-Delivery"] for r in receiver.requests)
    assert len(sent) == 40 and set(sent.values()) == {1}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert Webhook.objects.get().deliveries.filter(attempts=1).count() == 40


def test_two_workers_never_send_a_delivery_twice_when_a_batch_outlives_its_lease(
    receiver,  # noqa: F811
    model,
    owner,
    settings,
    monkeypatch,
):
    # Shrunk: each attempt may take 3 s, the receiver takes 0.3 s, and a batch keeps its rows
    # 6 s, less than sending 30 deliveries one after the other takes (9 s).
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 3
    monkeypatch.setattr(worker, "_lease", lambda *args: timedelta(seconds=6))
    for _ in range(90):
        receiver.reply(200, b"ok", delay=0.3)
    hook = webhooks.webhook_create(actor=owner, model=model, url=receiver.url, events=["all"])[0]
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uuid=uuid.uuid4(),
            webhook=hook,
            event="ping",
            payload={"n": i},
            created_at=now,
            next_attempt_at=now,
        )  # fmt: skip
        for i in range(30)
    )
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)

    def keep_working(i: int) -> int:
        time.sleep(0.3 * i)  # the second worker polls a little later
        stop_at = time.monotonic() + 60
        while pending.exists() and time.monotonic() < stop_at:
            webhooks.deliver_due(limit=30)
            time.sleep(0.2)
        return pending.count()

    results = run_at_once(2, keep_working)
    assert results == [0, 0], results
    sent = Counter(r.headers["X-Registry-Delivery"] for r in receiver.requests)
    twice = [delivery for delivery, n in sent.items() if n > 1]
    assert not twice, f"{len(twice)} deliveries were sent more than once"
    assert len(sent) == 30
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}
