from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from registry_site.tokens import token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it (once; only its digest is stored). "
        "For bootstrapping pipelines and operators' scripts."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What uses the token.")
        parser.add_argument("--scope", choices=["read", "write"], default="read")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, username, name, scope, expires_days, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        try:
            token, secret = token_create(
                actor=user, user=user, name=name, scope=scope, expires_days=expires_days
            )
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from None
        self.stderr.write(
            f"Created {scope} token {name!r} ({token.key_id}) for {username}"
            + (f", expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "")
            + ". Store it now; it is not shown again."
        )
        self.stdout.write(secret)
