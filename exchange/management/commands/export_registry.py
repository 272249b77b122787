import sys

from django.core.management.base import BaseCommand, CommandError

from exchange.archive import ExchangeError
from exchange.exporting import export_registry


class Command(BaseCommand):
    help = (
        "Write the registry (or the models named with --models) to one self-contained archive "
        "OUT (.tar, or .tar.gz): models, versions, metadata, datasets, lineage, model cards, "
        "reviews, aliases with their history, audit events and every file, with a manifest of "
        "sha256 checksums. Files are re-hashed while copied; a file that no longer matches its "
        "recorded checksum stops the export and nothing is written. Passwords are never "
        "exported."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", help="The archive to write (.tar or .tar.gz).")
        parser.add_argument("--models", nargs="+", metavar="NAME", help="Only these models.")

    def handle(self, *args, out, models=None, **options):
        tty = sys.stderr.isatty()

        def progress(done: int, total: int, done_bytes: int) -> None:
            if tty:
                sys.stderr.write(
                    f"\rexporting files: {done:,}/{total:,} ({done_bytes / 1e6:,.1f} MB)"
                )
                sys.stderr.flush()

        try:
            report = export_registry(out, model_names=models, progress=progress)
        except ExchangeError as e:
            raise CommandError(f"Not exported: {e}") from None
        finally:
            if tty:
                sys.stderr.write("\n")
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {len(report.models)} model(s), {report.versions} version(s), "
                f"{report.artifacts} file(s) ({report.artifact_bytes:,} bytes) and "
                f"{report.audit_events} audit event(s) to {report.path} "
                f"({report.archive_bytes:,} bytes). Audit head: {report.audit_head_hash or '-'}."
            )
        )
