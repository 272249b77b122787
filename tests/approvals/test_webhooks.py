"""Webhook deliveries end to end: outbox, signature, worker, retries, SSRF guard, limits.

A receiver is started per test on 127.0.0.1, port 0 (an ``http.server`` in a thread) and
allowed through the SSRF guard by REGISTRY_WEBHOOK_ALLOWED_HOSTS, as an on-prem receiver would.
"""

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from approvals import services, webhooks
from approvals.models import Webhook, WebhookDelivery
from approvals.webhooks import guard, sender
from audit.models import AuditEvent
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db
D = WebhookDelivery.Status


# ---------------------------------------------------------------------------------------------
# The receiver


@dataclass
class Received:
    path: str
    headers: object  # http.server's case-insensitive message
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every request; answers from a queue of replies, then with 200 "ok"."""

    def __init__(self):
        self.requests: list[Received] = []
        self.replies: deque = deque()
        handler = type("Handler", (_Handler,), {"receiver": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/registry"

    def reply(self, status: int = 200, body: bytes = b"ok", headers=None, *, delay=0.0):
        self.replies.append((status, body, headers or {}, delay))

    def stream(self, total_bytes: int):
        """Answer 200 with a body of ``total_bytes`` (or until the client hangs up)."""
        self.replies.append((200, total_bytes, {}, 0.0))


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.receiver.requests.append(Received(self.path, self.headers, body))
        replies = self.receiver.replies
        status, reply, headers, delay = replies.popleft() if replies else (200, b"ok", {}, 0)
        time.sleep(delay)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        size = reply if isinstance(reply, int) else len(reply)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            if isinstance(reply, int):
                chunk = b"x" * 65536
                for _ in range(reply // len(chunk)):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender stopped reading: what a capped read does

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    r = Receiver()
    r.thread.start()
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(timeout=5)


def subscribe(model, actor, url, events=("all",), secret=""):
    hook, plaintext = webhooks.webhook_create(
        actor=actor, model=model, url=url, events=list(events), secret=secret
    )
    return hook, plaintext


def run_worker() -> str:
    out = StringIO()
    call_command("deliver_webhooks", "--once", stdout=out)
    return out.getvalue()


def make_due(delivery: WebhookDelivery) -> None:
    """As if the backoff had passed."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def documented_verify():
    """The verification snippet of docs/webhooks.md, run as published."""
    text = (Path(django_settings.BASE_DIR) / "docs" / "webhooks.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in b)
    namespace: dict = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 (our own docs)
    return namespace["verify"]


def approved(model, editor, reviewer, auc=0.9):
    v = good_version(model, editor, auc=auc)
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)
    v.refresh_from_db()
    return v


# ---------------------------------------------------------------------------------------------
# Signed deliveries, after commit


def test_approval_reaches_the_receiver_signed_as_documented(
    receiver, model, owner, editor, reviewer
):
    hook, secret = subscribe(model, owner, receiver.url, events=["version.approved"])
    assert secret.startswith("whsec_") and len(secret) > 40
    v = approved(model, editor, reviewer)

    assert "1 delivered" in run_worker()

    [request] = receiver.requests
    assert request.path == "/hooks/registry"
    assert request.headers["X-Registry-Event"] == "version.approved"
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json
    event = AuditEvent.objects.get(action="version.approved")
    assert payload["event"] == "version.approved"
    assert payload["audit_seq"] == event.seq
    assert payload["actor"] == "reviewer"
    assert payload["model"]["slug"] == "fraud" and payload["model"]["url"].endswith(
        "/models/fraud/"
    )
    assert payload["version"]["number"] == v.number
    assert payload["version"]["status"] == "approved"
    assert "alias" not in payload and "reason" not in payload
    delivery = WebhookDelivery.objects.get()
    assert request.headers["X-Registry-Delivery"] == str(delivery.uuid)
    assert (delivery.status, delivery.attempts, delivery.response_status) == (D.DELIVERED, 1, 200)
    assert delivery.duration_ms is not None and delivery.next_attempt_at is None

    verify = documented_verify()
    assert verify(secret, request.headers, request.body)
    assert not verify("whsec_wrong", request.headers, request.body)
    assert not verify(secret, request.headers, request.body.replace(b"approved", b"rejected"))
    stale = {**dict(request.headers), "X-Registry-Timestamp": str(int(time.time()) - 3600)}
    stale["X-Registry-Signature"] = sender.sign(secret, int(stale["X-Registry-Timestamp"]), b"{}")
    assert not verify(secret, stale, b"{}")


def test_a_pasted_secret_signs_the_deliveries(receiver, model, owner, editor):
    subscribe(model, owner, receiver.url, events=["version.created"], secret="my-own-secret-123")
    good_version(model, editor)
    run_worker()
    [request] = receiver.requests
    assert documented_verify()("my-own-secret-123", request.headers, request.body)


def test_nothing_is_queued_when_the_change_rolls_back(receiver, model, owner, editor):
    subscribe(model, owner, receiver.url)
    v = good_version(model, editor)
    queued = WebhookDelivery.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.version_submit(actor=editor, version=v)
        assert WebhookDelivery.objects.filter(event="version.submitted").count() == 1
        raise RuntimeError("the request failed after the change")
    assert WebhookDelivery.objects.count() == queued
    assert not AuditEvent.objects.filter(action="version.submitted").exists()
    run_worker()
    assert [r.json["event"] for r in receiver.requests] == ["version.created"]


def test_queued_deliveries_belong_to_the_audit_event_of_the_change(model, owner, editor):
    hook, _ = subscribe(model, owner, "https://93.184.216.34/hook")
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    delivery = WebhookDelivery.objects.get(event="version.submitted")
    assert delivery.webhook == hook
    assert delivery.audit_seq == AuditEvent.objects.get(action="version.submitted").seq
    assert delivery.status == D.PENDING and delivery.attempts == 0


def test_only_interested_active_subscriptions_get_an_event(
    model, owner, editor, reviewer, promoter, superuser
):
    url = "https://93.184.216.34/hook"
    moves, _ = subscribe(model, owner, url, events=["alias.moved", "alias.rolled_back"])
    paused, _ = subscribe(model, owner, url)
    webhooks.webhook_update(actor=owner, webhook=paused, url=url, events=["all"], active=False)
    other_model = factories.registered_model(owner, "other")
    elsewhere, _ = subscribe(other_model, owner, url)
    everything, _ = subscribe(None, superuser, url)

    v = approved(model, editor, reviewer)
    services.alias_set(actor=promoter, model=model, name="production", version=v)

    def events_of(hook):
        return list(hook.deliveries.order_by("pk").values_list("event", flat=True))

    assert events_of(moves) == ["alias.moved"]
    assert events_of(paused) == [] and events_of(elsewhere) == []
    assert events_of(everything) == [
        "version.created", "version.submitted", "review.approved", "version.approved",
        "alias.moved",
    ]  # fmt: skip


def test_alias_events_say_which_version_moved_where_and_why(
    model, owner, editor, reviewer, promoter
):
    hook, _ = subscribe(model, owner, "https://93.184.216.34/hook", events=["alias.rolled_back"])
    first, second = approved(model, editor, reviewer), approved(model, editor, reviewer, auc=0.91)
    services.alias_set(actor=promoter, model=model, name="production", version=first)
    services.alias_set(actor=promoter, model=model, name="production", version=second)
    services.alias_rollback(actor=promoter, model=model, reason="recall dropped")
    payload = hook.deliveries.get().payload
    assert payload["alias"] == {"name": "production", "version": 1, "previous_version": 2}
    assert payload["version"]["number"] == 1
    assert payload["reason"] == "recall dropped"
    assert payload["actor"] == "promoter"


# ---------------------------------------------------------------------------------------------
# Retries


def test_a_receiver_failing_then_recovering_gets_a_retry_and_the_log_shows_two_attempts(
    receiver, model, owner, editor, client_for
):
    hook, _ = subscribe(model, owner, receiver.url)
    receiver.reply(500, b"database is down")
    good_version(model, editor)

    before = timezone.now()
    assert "1 to retry" in run_worker()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (D.PENDING, 1, 500)
    assert delivery.last_error == "HTTP 500 from the receiver."
    assert delivery.response_excerpt == "database is down"
    wait = delivery.next_attempt_at - before
    assert timedelta(seconds=29) < wait < timedelta(seconds=35)  # 30 s backoff
    assert "Attempted 0" in run_worker()  # not due yet
    assert len(receiver.requests) == 1

    make_due(delivery)
    assert "1 delivered" in run_worker()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (D.DELIVERED, 2, 200)
    assert delivery.last_error == ""
    first, second = receiver.requests
    assert first.headers["X-Registry-Delivery"] == second.headers["X-Registry-Delivery"]
    assert first.body == second.body

    html = client_for(owner).get(f"/models/fraud/webhooks/{hook.pk}/").content.decode()
    row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", html.split('id="deliveries"')[1], re.S).group(1)
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]
    assert cells[0] == "version.created"
    assert cells[2] == "delivered" and cells[3] == "200" and cells[5] == "2"


def test_backoff_doubles_and_the_delivery_fails_for_good_after_the_last_attempt(
    receiver, model, owner, editor, settings
):
    settings.REGISTRY_WEBHOOK_MAX_ATTEMPTS = 4
    subscribe(model, owner, receiver.url)
    for _ in range(4):
        receiver.reply(503)
    good_version(model, editor)
    waits = []
    for _ in range(4):
        delivery = WebhookDelivery.objects.get()
        make_due(delivery)
        started = timezone.now()
        run_worker()
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append(round((delivery.next_attempt_at - started).total_seconds() / 30))
    assert waits == [1, 2, 4]
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (D.FAILED, 4, None)
    assert delivery.last_error == "HTTP 503 from the receiver."
    assert "Attempted 0" in run_worker() and len(receiver.requests) == 4


def test_a_paused_webhook_keeps_its_deliveries_until_it_is_active_again(
    receiver, model, owner, editor
):
    hook, _ = subscribe(model, owner, receiver.url)
    good_version(model, editor)
    webhooks.webhook_update(actor=owner, webhook=hook, url=hook.url, events=["all"], active=False)
    assert "Attempted 0" in run_worker()
    webhooks.webhook_update(actor=owner, webhook=hook, url=hook.url, events=["all"], active=True)
    assert "1 delivered" in run_worker()
    assert len(receiver.requests) == 1


def test_redeliver_sends_the_same_event_under_a_new_delivery_id(receiver, model, owner, editor):
    hook, _ = subscribe(model, owner, receiver.url)
    good_version(model, editor)
    run_worker()
    original = WebhookDelivery.objects.get()
    copy = webhooks.delivery_redeliver(actor=owner, delivery=original)
    run_worker()
    first, second = receiver.requests
    assert first.json == second.json  # same event id: receivers can de-duplicate
    assert first.headers["X-Registry-Delivery"] != second.headers["X-Registry-Delivery"]
    copy.refresh_from_db()
    assert copy.redelivery_of == original and copy.status == D.DELIVERED
    assert AuditEvent.objects.filter(action="webhook.redelivered").count() == 1


def test_send_test_event_pings_only_that_webhook(receiver, model, owner, superuser):
    hook, _ = subscribe(model, owner, receiver.url, events=["alias.moved"])
    subscribe(None, superuser, receiver.url)
    webhooks.webhook_send_test(actor=owner, webhook=hook)
    run_worker()
    [request] = receiver.requests
    assert request.headers["X-Registry-Event"] == "ping"
    assert request.json["webhook"]["id"] == hook.pk
    assert request.json["model"]["slug"] == "fraud" and request.json["audit_seq"] is None


# ---------------------------------------------------------------------------------------------
# A subscription acts with its creator's authority, checked when each delivery is sent


def test_a_delivery_is_not_sent_once_its_creator_lost_manage(receiver, model, owner, editor):
    from models_app.access import Role
    from models_app.sharing import sharing_set

    sharing_set(actor=owner, model=model, principal=editor, roles={Role.MANAGE})
    hook, secret = subscribe(model, editor, receiver.url, secret="a-long-enough-secret")
    good_version(model, editor)  # pending delivery, created while editor still managed
    sharing_set(actor=owner, model=model, principal=editor, roles={Role.EDIT})
    assert "1 failed for good" in run_worker()
    assert receiver.requests == []
    delivery = hook.deliveries.get()
    assert delivery.status == D.FAILED and delivery.next_attempt_at is None
    assert "creator no longer holds the manage role" in delivery.last_error
    assert receiver.url not in delivery.last_error and "127.0.0.1" not in delivery.last_error
    assert secret not in delivery.last_error
    assert "0 deliveries" in run_worker() and receiver.requests == []  # not retried


def test_a_creator_who_manages_through_a_team_is_still_delivered_to(receiver, model, owner, editor):
    from models_app.access import Role
    from models_app.sharing import sharing_set

    ops = factories.team("ops", editor)
    sharing_set(actor=owner, model=model, principal=ops, roles={Role.MANAGE})
    hook, _ = subscribe(model, editor, receiver.url)
    good_version(model, editor)
    assert "1 delivered" in run_worker()
    ops.user_set.remove(editor)
    good_version(model, editor)
    assert "1 failed for good" in run_worker()
    assert len(receiver.requests) == 1


def test_a_deactivated_or_deleted_creator_stops_deliveries(receiver, model, owner, editor):
    from models_app.access import Role
    from models_app.sharing import sharing_set

    sharing_set(actor=owner, model=model, principal=editor, roles={Role.MANAGE})
    subscribe(model, editor, receiver.url)
    editor.is_active = False
    editor.save()
    good_version(model, owner)
    assert "1 failed for good" in run_worker()
    editor.delete()
    good_version(model, owner)
    assert "1 failed for good" in run_worker()
    assert receiver.requests == []


def test_a_global_delivery_is_not_sent_once_its_creator_is_no_longer_a_superuser(
    receiver, model, editor
):
    ops = factories.user("ops", is_staff=True, is_superuser=True)
    hook, _ = subscribe(None, ops, receiver.url)
    ops.is_superuser = False  # still staff: not enough for every model's events
    ops.save()
    good_version(model, editor)
    assert "1 failed for good" in run_worker()
    assert receiver.requests == []
    assert "no longer a superuser" in hook.deliveries.get().last_error


def test_the_authority_check_is_one_query_per_batch(
    receiver, model, owner, editor, django_assert_num_queries
):
    from approvals.webhooks import worker

    for _ in range(3):
        subscribe(model, owner, receiver.url)
    for auc in (0.91, 0.92):
        good_version(model, editor, auc=auc)
    batch = worker.claim(100, timezone.now())
    assert len(batch) >= 6
    with django_assert_num_queries(1):
        assert worker.unauthorized(batch) == {}


# ---------------------------------------------------------------------------------------------
# The SSRF guard and the limits of one attempt


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost:8000/hook", "localhost is not a public address"),
        ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("http://[fec0::1]/hook", "fec0::1 is a site-local address"),
    ],
)
def test_the_guard_refuses_non_public_targets(settings, url, reason):
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(guard.UnsafeTarget, match=re.escape(reason)) as refused:
        guard.check(url)
    assert "REGISTRY_WEBHOOK_ALLOWED_HOSTS" in str(refused.value)


def fake_dns(monkeypatch, answer):
    """Every host name resolves to ``answer``; no lookup reaches the network."""
    import socket

    family = socket.AF_INET6 if ":" in answer else socket.AF_INET

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(family, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(guard.socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize("answer", ["10.1.2.3", "fec0::1", "127.0.0.1", "169.254.169.254"])
def test_a_name_resolving_to_a_non_public_address_is_refused_without_the_address(
    settings, monkeypatch, answer
):
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = []
    fake_dns(monkeypatch, answer)
    with pytest.raises(guard.UnsafeTarget) as refused:
        guard.check("https://build.internal.example/hook")
    message = str(refused.value)
    assert message.startswith("build.internal.example is not a public address;")
    assert answer not in message
    for kind in ("private", "loopback", "link-local", "site-local"):
        assert kind not in message  # the kind of the answer is an answer too


def test_the_allow_list_opens_named_hosts_addresses_and_networks(settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["localhost", "127.0.0.1", "10.0.0.0/8"]
    assert guard.check("http://localhost:9/x").host == "localhost"
    assert guard.check("http://127.0.0.1:9/x").addresses == ("127.0.0.1",)
    assert guard.check("http://10.0.0.1/x").addresses == ("10.0.0.1",)
    with pytest.raises(guard.UnsafeTarget, match="link-local"):
        guard.check("http://169.254.169.254/")
    assert guard.check("https://93.184.216.34/x").port == 443


def test_a_refused_target_is_a_failed_attempt_with_the_reason_in_the_log(
    receiver, model, owner, editor, settings
):
    hook, _ = subscribe(model, owner, receiver.url)  # allowed when created…
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = []  # …no longer when sent
    good_version(model, editor)
    assert "1 to retry" in run_worker()
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and delivery.response_status is None
    assert delivery.last_error.startswith("Refused: 127.0.0.1 is a loopback address")
    assert receiver.requests == []


def test_the_delivery_log_does_not_show_what_a_name_resolved_to(
    receiver, model, owner, editor, settings, monkeypatch
):
    subscribe(model, owner, receiver.url)
    Webhook.objects.update(url="https://deploy.example.test/in")
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = []
    fake_dns(monkeypatch, "10.1.2.3")
    good_version(model, editor)
    run_worker()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("Refused: deploy.example.test is not a public address")
    assert "10.1.2.3" not in delivery.last_error
    assert receiver.requests == []


def test_the_host_is_resolved_once_and_the_checked_address_is_the_one_called(
    receiver, model, owner, editor, settings, monkeypatch
):
    """DNS rebinding: a second lookup would answer 169.254.169.254; there is none."""
    import ipaddress
    import socket

    port = receiver.server.server_port
    answers = ["127.0.0.1", "169.254.169.254"]
    lookups = []

    def fake_getaddrinfo(host, *args, **kwargs):
        try:  # an address literal is not a DNS lookup (socket.create_connection makes one)
            address = str(ipaddress.ip_address(host))
        except ValueError:
            lookups.append(host)
            address = answers[min(len(lookups) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the address, not the name
    monkeypatch.setattr(guard.socket, "getaddrinfo", fake_getaddrinfo)
    hook = Webhook.objects.create(
        model=model,
        url=f"http://deploy.example.test:{port}/in",
        events=["all"],
        secret="s" * 20,
        created_by=owner,
    )
    lookups.clear()
    answers[:] = ["127.0.0.1", "169.254.169.254"]
    good_version(model, editor)
    assert "1 delivered" in run_worker()
    assert lookups == ["deploy.example.test"]
    [request] = receiver.requests
    assert request.headers["Host"] == f"deploy.example.test:{port}"
    assert hook.deliveries.get().status == D.DELIVERED


def test_a_redirect_is_not_followed(receiver, model, owner, editor):
    subscribe(model, owner, receiver.url)
    receiver.reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    good_version(model, editor)
    run_worker()
    delivery = WebhookDelivery.objects.get()
    assert len(receiver.requests) == 1
    assert (delivery.status, delivery.response_status) == (D.PENDING, 302)
    assert "redirects are not followed" in delivery.last_error
    assert "169.254.169.254" in delivery.last_error


def test_a_huge_response_is_read_only_up_to_the_cap(receiver, model, owner, editor, settings):
    subscribe(model, owner, receiver.url)
    receiver.stream(50 * 1024 * 1024)
    good_version(model, editor)
    started = time.monotonic()
    assert "1 delivered" in run_worker()
    assert time.monotonic() - started < 5
    delivery = WebhookDelivery.objects.get()
    assert delivery.response_excerpt.endswith("[response cut at 65536 bytes]")
    assert len(delivery.response_excerpt) < 2100

    receiver.stream(10 * 1024 * 1024)
    target = guard.check(receiver.url)
    response = sender.post(target, b"{}", {}, timeout=5, max_bytes=4096)
    assert len(response.body) == 4096 and response.truncated


def test_a_slow_receiver_times_out(receiver, model, owner, editor, settings):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 1
    subscribe(model, owner, receiver.url)
    receiver.reply(200, b"late", delay=3)
    good_version(model, editor)
    run_worker()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == D.PENDING and delivery.last_error.startswith("Timed out")
    assert delivery.duration_ms < 2500


def test_an_unreachable_receiver_is_a_failed_attempt(model, owner, editor, settings):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    subscribe(model, owner, f"http://127.0.0.1:{port}/")
    good_version(model, editor)
    assert "1 to retry" in run_worker()
    assert WebhookDelivery.objects.get().last_error.startswith("Connection failed")


def test_the_worker_command_reports_a_summary_line(receiver, model, owner, editor):
    subscribe(model, owner, receiver.url)
    receiver.reply(500)
    good_version(model, editor)
    good_version(model, editor)
    assert run_worker().strip() == (
        "Attempted 2 deliveries: 1 delivered, 1 to retry, 0 failed for good."
    )
