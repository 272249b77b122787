from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from audit.sign_ins import failed_sign_ins_prune


class Command(BaseCommand):
    help = (
        "Delete the hourly counts of failed sign-ins whose last failure is older than "
        "--older-than-days days (default 90). Only these counts go: the audit chain, which keeps "
        "at most one auth.sign_in_failed event per known account and hour, is never pruned."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=90)

    def handle(self, *args, older_than_days: int, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        deleted = failed_sign_ins_prune(older_than=timedelta(days=older_than_days))
        self.stdout.write(
            f"Deleted {deleted} failed sign-in count(s) older than {older_than_days} day(s)."
        )
