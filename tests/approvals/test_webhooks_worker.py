"""The worker cannot be monopolised by one subscription (issue 15, finding 15): one deadline per
attempt, fair claiming, concurrent sends within a per-host cap, a per-subscription limit on test
pings and redeliveries, and an outcome written only by the worker that still holds the claim.

Receivers run on loopback addresses; fake names (``a.test``…) resolve to them through a
patched resolver and are let through the SSRF guard by REGISTRY_WEBHOOK_ALLOWED_HOSTS."""

import socket
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from approvals import webhooks
from approvals.models import Webhook, WebhookDelivery
from approvals.webhooks import guard, worker
from audit.models import AuditEvent
from tests.approvals.test_webhooks import receiver  # noqa: F401 (fixture)
from tests.approvals.test_webhooks_views import hook_url

pytestmark = pytest.mark.django_db
D = WebhookDelivery.Status


def fake_dns(monkeypatch, answers: dict[str, list[str]], *, hang: threading.Event | None = None):
    """Names in ``answers`` resolve to those addresses; with ``hang``, every lookup first waits
    for it (a resolver that does not answer)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if hang is not None:
            hang.wait(10)
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    monkeypatch.setattr(guard.socket, "getaddrinfo", getaddrinfo)


def queue(hook: Webhook, n: int, *, at=None) -> list[WebhookDelivery]:
    at = at or timezone.now()
    return WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uuid=uuid.uuid4(),
            webhook=hook,
            event="ping",
            payload={"n": i},
            created_at=at,
            next_attempt_at=at,
        )  # fmt: skip
        for i in range(n)
    )


# ---------------------------------------------------------------------------------------------
# One deadline per attempt


@pytest.fixture
def silent_tls(settings):
    """A port on 127.0.0.1, .2 and .3 that accepts connections and never answers the TLS
    handshake: a receiver that hangs on every address its name resolves to."""
    first = socket.create_server(("127.0.0.1", 0))
    port = first.getsockname()[1]
    listeners = [first] + [socket.create_server((f"127.0.0.{i}", port)) for i in (2, 3)]
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["hang.test"]
    yield port
    for listener in listeners:
        listener.close()


def test_a_receiver_hanging_on_every_address_costs_one_timeout_not_one_per_address(
    silent_tls, monkeypatch, settings, model, owner
):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 1
    fake_dns(monkeypatch, {"hang.test": ["127.0.0.1", "127.0.0.2", "127.0.0.3"]})
    hook = webhooks.webhook_create(
        actor=owner, model=model, url=f"https://hang.test:{silent_tls}/hook", events=["all"]
    )[0]
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    started = time.monotonic()
    summary = webhooks.deliver_due()
    elapsed = time.monotonic() - started
    assert summary.retrying == 1
    assert elapsed < 1.8, f"three silent addresses took {elapsed:.1f} s, not one timeout"
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("Timed out")
    assert delivery.duration_ms < 1800


def test_a_resolver_that_does_not_answer_costs_one_timeout(monkeypatch, settings, model, owner):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["slow-dns.test"]
    fake_dns(monkeypatch, {"slow-dns.test": ["127.0.0.1"]})
    hook = webhooks.webhook_create(
        actor=owner, model=model, url="http://slow-dns.test:9/hook", events=["all"]
    )[0]
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    hang = threading.Event()
    fake_dns(monkeypatch, {"slow-dns.test": ["127.0.0.1"]}, hang=hang)
    try:
        started = time.monotonic()
        webhooks.deliver_due()
        elapsed = time.monotonic() - started
    finally:
        hang.set()
    assert elapsed < 1.8, f"a silent resolver held the worker for {elapsed:.1f} s"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == D.PENDING and delivery.attempts == 1
    assert delivery.last_error == (
        "Timed out: resolving slow-dns.test did not finish within the time left"
    )


@pytest.fixture
def trickler(settings):
    """A receiver on 127.0.0.1 that answers one byte every 0.2 s: each read gets a byte
    before any socket timeout, so only a deadline over the whole exchange stops it."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100:
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()
    thread.join(timeout=5)


def test_a_receiver_trickling_its_answer_is_cut_at_the_deadline(trickler, settings, model, owner):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 1
    hook = webhooks.webhook_create(actor=owner, model=model, url=trickler, events=["all"])[0]
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    started = time.monotonic()
    webhooks.deliver_due()
    elapsed = time.monotonic() - started
    assert elapsed < 1.8, f"a trickling receiver held the attempt for {elapsed:.1f} s"
    assert WebhookDelivery.objects.get().last_error == (
        "Timed out: the receiver took longer than 1 s"
    )


# ---------------------------------------------------------------------------------------------
# Fair claiming


def test_one_subscriptions_backlog_does_not_hold_up_another(settings, model, owner):
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.REGISTRY_WEBHOOK_PER_WEBHOOK = 10
    busy, quiet = (
        webhooks.webhook_create(actor=owner, model=model, url=url, events=["all"])[0]
        for url in ("http://127.0.0.1:9/busy", "http://127.0.0.1:9/quiet")
    )
    now = timezone.now()
    queue(busy, 1000, at=now - timedelta(hours=1))  # older: first in line
    (waiting,) = queue(quiet, 1, at=now)
    batch = worker.claim(100, timezone.now())
    assert waiting.pk in {d.pk for d in batch}
    assert Counter(d.webhook_id for d in batch) == {busy.pk: 10, quiet.pk: 1}
    # The rest of the backlog stays due for the next batches.
    assert WebhookDelivery.objects.due(timezone.now()).count() == 990


# ---------------------------------------------------------------------------------------------
# Concurrent sends within the per-host cap


class Gauge:
    """A receiver that answers after ``delay`` and records how many requests overlapped, in
    all and per Host header."""

    def __init__(self, delay: float):
        self.delay, self.lock = delay, threading.Lock()
        self.now, self.most = Counter(), Counter()  # by host, and "*" for all
        self.seen: list[str] = []
        handler = type("Handler", (_GaugeHandler,), {"gauge": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def enter(self, host: str) -> None:
        with self.lock:
            for key in (host, "*"):
                self.now[key] += 1
                self.most[key] = max(self.most[key], self.now[key])

    def leave(self, host: str) -> None:
        with self.lock:
            for key in (host, "*"):
                self.now[key] -= 1


class _GaugeHandler(BaseHTTPRequestHandler):
    gauge: Gauge

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        host = self.headers["Host"].split(":")[0]
        self.gauge.enter(host)
        try:
            time.sleep(self.gauge.delay)
        finally:
            self.gauge.leave(host)
        self.gauge.seen.append(self.headers["X-Registry-Delivery"])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def gauge():
    g = Gauge(delay=0.3)
    g.thread.start()
    yield g
    g.server.shutdown()
    g.server.server_close()
    g.thread.join(timeout=5)


def test_a_batch_is_sent_concurrently_and_at_most_k_at_a_time_per_host(
    gauge, monkeypatch, settings, model, owner
):
    settings.REGISTRY_WEBHOOK_CONCURRENCY = 8
    settings.REGISTRY_WEBHOOK_PER_HOST = 2
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["a.test", "b.test"]
    fake_dns(monkeypatch, {"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    port = gauge.server.server_port
    for host in ("a.test", "b.test"):
        hook = webhooks.webhook_create(
            actor=owner, model=model, url=f"http://{host}:{port}/hook", events=["all"]
        )[0]
        queue(hook, 6)
    summary = webhooks.deliver_due()
    assert summary.delivered == 12
    assert len(gauge.seen) == len(set(gauge.seen)) == 12
    assert gauge.most["*"] >= 3, "sends did not overlap"
    assert gauge.most["a.test"] == gauge.most["b.test"] == 2  # the per-host cap, reached


# ---------------------------------------------------------------------------------------------
# Test pings and redeliveries are limited per subscription


def test_test_and_redeliver_beyond_the_limit_answer_429_and_queue_nothing(
    client_for, settings, model, owner
):
    settings.REGISTRY_WEBHOOK_MANUAL_PER_MINUTE = 2
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook, other = (
        webhooks.webhook_create(actor=owner, model=model, url=url, events=["all"])[0]
        for url in ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    )
    client = client_for(owner)
    assert client.post(hook_url(hook, "webhook_test")).status_code == 302
    first = WebhookDelivery.objects.get()
    assert client.post(hook_url(hook, "webhook_redeliver", first.pk)).status_code == 302
    deliveries, events = WebhookDelivery.objects.count(), AuditEvent.objects.count()

    for refused in (
        client.post(hook_url(hook, "webhook_test")),
        client.post(hook_url(hook, "webhook_redeliver", first.pk)),
    ):
        assert refused.status_code == 429
        assert 1 <= int(refused["Retry-After"]) <= 60
        html = refused.content.decode()
        assert "test pings or redeliveries in the last minute" in html
        assert "Nothing was queued" in html
    assert WebhookDelivery.objects.count() == deliveries
    assert AuditEvent.objects.count() == events
    # The limit is per subscription: another one is not affected.
    assert client.post(hook_url(other, "webhook_test")).status_code == 302


def test_the_limit_counts_only_the_last_minute(settings, model, owner):
    settings.REGISTRY_WEBHOOK_MANUAL_PER_MINUTE = 1
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook = webhooks.webhook_create(
        actor=owner, model=model, url="http://127.0.0.1:9/a", events=["all"]
    )[0]
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    with pytest.raises(webhooks.RateLimited):
        webhooks.webhook_send_test(actor=owner, webhook=hook)
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    assert WebhookDelivery.objects.count() == 2


# ---------------------------------------------------------------------------------------------
# The claim: crash recovery, and no outcome from a worker that lost it


def test_a_crashed_workers_deliveries_are_sent_once_after_its_lease_and_its_late_outcome_is_dropped(
    receiver,  # noqa: F811
    model,
    owner,
):
    hook = webhooks.webhook_create(actor=owner, model=model, url=receiver.url, events=["all"])[0]
    queue(hook, 1)
    (taken,) = worker.claim(10, timezone.now())  # a worker claims it, then stops responding
    assert webhooks.deliver_due().attempted == 0  # the lease holds
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert webhooks.deliver_due().delivered == 1  # the lease ran out: another worker sends it
    assert len(receiver.requests) == 1
    late = worker.Outcome(ok=False, status=500, error="HTTP 500 from the receiver.")
    assert worker.record(taken, late, timezone.now()) is None  # the first worker wakes up
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (D.DELIVERED, 1, "")


def test_the_lease_covers_a_batch_sent_to_one_host(settings):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 5
    settings.REGISTRY_WEBHOOK_CONCURRENCY = 8
    settings.REGISTRY_WEBHOOK_PER_HOST = 2
    # 100 deliveries to one host, two at a time, each up to 5 s: 250 s, plus the margin.
    assert worker._lease(100) == timedelta(seconds=250 + worker.LEASE_MARGIN_SECONDS)
