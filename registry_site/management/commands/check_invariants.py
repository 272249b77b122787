from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from registry_site import invariants


class Command(BaseCommand):
    help = (
        "Check what must hold whatever failed: every artifact's file is stored with its "
        "recorded size and SHA-256; no stored file without a row past the grace period; "
        "version numbers unique per model; one approved holder per protected alias; every "
        "version, decision and alias move has its audit event and the audit chain verifies; "
        "each run's latest metric values are its history's latest points, its outputs and "
        "logged models' source runs are in their experiment, each tracked file has one owner. "
        "Names each violation and exits with status 1 if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=60,
            help="Stored files without a row younger than this are uploads in progress "
            "(default 60, as sweep_orphans).",
        )
        parser.add_argument(
            "--no-digests",
            action="store_true",
            help="Compare stored sizes only; do not read every file to hash it.",
        )

    def handle(self, *args, grace_minutes=60, no_digests=False, **options):
        if grace_minutes < 0:
            raise CommandError("--grace-minutes must be 0 or more.")
        found = invariants.check_all(
            grace=timedelta(minutes=grace_minutes), verify_digests=not no_digests
        )
        for violation in found:
            self.stdout.write(str(violation))
        if found:
            raise CommandError(f"{len(found)} invariant violation(s).", returncode=1)
        self.stdout.write(self.style.SUCCESS("All invariants hold."))
