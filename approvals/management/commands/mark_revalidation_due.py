from django.core.management.base import BaseCommand

from approvals import services


class Command(BaseCommand):
    help = (
        "Record version.revalidation_due (and so its webhooks) for every approved version whose "
        "approval is older than its model's approval_valid_days, once per approval: a version "
        "marked already is skipped until a revalidation renews its approval. Pages and APIs "
        "show 'revalidation due' without this command; it only sends the notice. Run it from "
        "cron (e.g. hourly); the webhook worker (deliver_webhooks) also runs it every minute."
    )

    def handle(self, *args, **options):
        marked = services.revalidation_mark_due()
        self.stdout.write(f"{marked} version{'s' if marked != 1 else ''} marked revalidation due.")
