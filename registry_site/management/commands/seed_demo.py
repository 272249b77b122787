from django.core.management.base import BaseCommand

from registry_site import demo


class Command(BaseCommand):
    help = (
        "Create demo users, teams and data for a local registry. Idempotent: existing demo "
        "objects are kept as they are, so a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print logins.")

    def handle(self, *args, quiet_logins=False, **options):
        users = demo.seed_users()
        if not quiet_logins:
            self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
            for d in demo.DEMO_USERS:
                self.stdout.write(f"  {d.username:<8} {d.role}")
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(users)} users."))
