import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exchange.archive import ExchangeError
from exchange.history import verify_imported
from exchange.importing import import_registry


class Command(BaseCommand):
    help = (
        "Restore an archive written by export_registry, into an empty or an existing registry. "
        "Every file is checked against the manifest's sha256 and the exported audit history is "
        "re-verified first; then everything is imported in one transaction, or nothing is: any "
        "mismatch or conflict refuses the import and names what failed. A model whose name "
        "exists here is a conflict (--on-conflict fail, the default) or is left as it is "
        "(--on-conflict skip). --verify-history re-checks the audit history of past imports."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", nargs="?", help="The archive (.tar or .tar.gz).")
        parser.add_argument("--on-conflict", choices=["fail", "skip"], default="fail")
        parser.add_argument("--as", dest="username", help="Record the import as this user.")
        parser.add_argument(
            "--verify-history",
            action="store_true",
            help="Only re-verify the audit history imported so far, and exit.",
        )

    def handle(self, *args, archive=None, on_conflict="fail", username=None, **options):
        if options.get("verify_history"):
            return self._verify()
        if not archive:
            raise CommandError("Name the archive to import (or pass --verify-history).")
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {username!r}.")
        tty = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if tty:
                sys.stderr.write(f"\rverifying: {done:,}/{total:,} archive members")
                sys.stderr.flush()

        try:
            report = import_registry(
                archive, on_conflict=on_conflict, actor=actor, progress=progress
            )
        except ExchangeError as e:
            raise CommandError(f"Not imported: {e}") from None
        finally:
            if tty:
                sys.stderr.write("\n")
        skipped = f"; kept existing {', '.join(report.skipped)}" if report.skipped else ""
        created = (
            f"; created users without passwords: {', '.join(report.users_created)}"
            if report.users_created
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(report.models)} model(s), {report.versions} version(s), "
                f"{report.artifacts} file(s) ({report.artifact_bytes:,} bytes) and "
                f"{report.audit_events} audit event(s) (head {report.audit_head_hash or '-'})"
                f"{skipped}{created}."
            )
        )

    def _verify(self) -> None:
        reports = verify_imported()
        bad = [r for r in reports if not r.ok]
        for r in bad:
            self.stderr.write(
                f"Import #{r.batch.pk} ({r.batch.archive_sha256[:12]}): history BROKEN: {r.problem}"
            )
        if bad:
            raise CommandError(f"{len(bad)} of {len(reports)} imported histories do not verify.")
        self.stdout.write(
            self.style.SUCCESS(f"Imported audit history OK: {len(reports)} import(s).")
        )
