import sys

from django.core.management.base import BaseCommand, CommandError

from audit.chain import verify_chain
from audit.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chain from the first event and report the first broken "
        "link (a modified, deleted or inserted event). Exits non-zero when the chain is broken. "
        "Prints the head hash: keep it somewhere else to detect a wiped or truncated log."
    )

    def handle(self, *args, **options):
        total = AuditEvent.objects.count()
        tty = sys.stderr.isatty()

        def progress(done: int) -> None:
            if tty and (done % 1000 == 0 or done == total):
                sys.stderr.write(f"\rverifying audit chain: {done:,}/{total:,} events")
                sys.stderr.flush()

        report = verify_chain(progress=progress)
        if tty:
            sys.stderr.write("\n")
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{report.broken_at}: {report.problem} "
                f"({report.checked:,} events verified before it)."
            )
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        head_text = f"head #{head[0]} {head[1]}" if head else "empty log"
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain OK: {report.checked:,} events verified, {head_text}.")
        )
