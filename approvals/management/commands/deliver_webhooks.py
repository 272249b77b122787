import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from approvals import services
from approvals.webhooks import deliver_due

# How often the worker also records approvals that have expired (version.revalidation_due).
MARK_DUE_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Send due webhook deliveries: only committed ones, signed, to public addresses, each "
        "attempt within REGISTRY_WEBHOOK_TIMEOUT_SECONDS, several at once "
        "(REGISTRY_WEBHOOK_CONCURRENCY, REGISTRY_WEBHOOK_PER_HOST), retried with exponential "
        "backoff until REGISTRY_WEBHOOK_MAX_ATTEMPTS. Runs until stopped (SIGTERM/SIGINT finish "
        "the current batch first); --once sends what is due and exits. Every minute it also "
        "records approvals that have expired (as manage.py mark_revalidation_due does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is due, then exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between polls (default REGISTRY_WEBHOOK_POLL_SECONDS)",
        )
        parser.add_argument("--batch", type=int, default=100, help="deliveries claimed at once")

    def handle(self, *args, once: bool, interval: float | None, batch: int, **options):
        if once:
            services.revalidation_mark_due()
            self.stdout.write(str(deliver_due(limit=batch)))
            return
        interval = interval or settings.REGISTRY_WEBHOOK_POLL_SECONDS
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"Delivering webhooks every {interval:g} s (SIGTERM stops).")
        totals = [0, 0, 0]
        marked_at = None
        while not stop.is_set():
            close_old_connections()
            try:
                if marked_at is None or time.monotonic() - marked_at >= MARK_DUE_SECONDS:
                    services.revalidation_mark_due()
                    marked_at = time.monotonic()
                summary = deliver_due(limit=batch)
            except DatabaseError as e:  # the database restarting must not end the worker
                self.stderr.write(f"Database unavailable, retrying in {interval:g} s: {e}")
                stop.wait(interval)
                continue
            if summary.attempted:
                self.stdout.write(str(summary))
            for i, n in enumerate((summary.delivered, summary.retrying, summary.failed)):
                totals[i] += n
            stop.wait(interval)
        close_old_connections()
        self.stdout.write(
            f"Stopped: {totals[0]} delivered, {totals[1]} retries scheduled, {totals[2]} failed."
        )
