from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from registry_site import demo

DUMMY_MAIL = "django.core.mail.backends.dummy.EmailBackend"


class Command(BaseCommand):
    help = (
        "Create demo users, teams and data for a local registry. Idempotent: existing demo "
        "objects are kept as they are, so a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print logins.")

    def handle(self, *args, quiet_logins=False, **options):
        # The demo's history starts with the teams, 120 days ago (demo.days_ago).
        with demo.days_ago(demo.HISTORY_STARTS_DAYS_AGO):
            users = demo.seed_users()
        # The demo's own review history would otherwise mail every demo user.
        with override_settings(MAILERS={"default": {"BACKEND": DUMMY_MAIL}}):
            models = demo.seed_catalogue(users)
        if not quiet_logins:
            self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
            for d in demo.DEMO_USERS:
                self.stdout.write(f"  {d.username:<8} {d.role}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(users)} users, {len(models)} new models "
                "(existing ones kept)."
            )
        )
