"""manage.py release_name NAME --by ADMIN: let a new model take a deleted or renamed model's
name (audited as name.released, like a release in the admin)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from models_app.models import ReservedName
from models_app.names import name_key
from models_app.services import name_release


class Command(BaseCommand):
    help = (
        "Release a reserved model name (one a deleted or renamed model had), so that a new "
        "model may take it. Whatever still resolves the name will then reach the new model. "
        "--by names the superuser the audit log records."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--by", required=True, help="username of the releasing superuser")

    def handle(self, *args, name: str, by: str, **options):
        actor = get_user_model().objects.filter(username=by, is_superuser=True).first()
        if actor is None:
            raise CommandError(f"No superuser named {by!r}.")
        reserved = ReservedName.objects.filter(name_key=name_key(name)).first()
        if reserved is None:
            raise CommandError(f"The name {name!r} is not reserved.")
        name_release(actor=actor, reserved=reserved)
        self.stdout.write(f"Released {reserved.name!r} (its model was {reserved.why}).")
