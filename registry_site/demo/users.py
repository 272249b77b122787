"""Demo users and teams for `make run`. Idempotent: running it twice changes nothing."""

from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.db import transaction

from models_app.teams import team_membership_set

DEMO_PASSWORD = "demo-registry-2026"  # noqa: S105 (printed by make run, demo only)


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: str
    is_superuser: bool = False
    teams: tuple[str, ...] = ()


DEMO_USERS = [
    DemoUser("admin", "Ada Admin", "administrator: sees and manages everything", is_superuser=True),
    DemoUser(
        "dana",
        "Dana Scientist",
        "data scientist: registers and submits models",
        teams=("fraud-team",),
    ),
    DemoUser("rita", "Rita Reviewer", "reviewer", teams=("model-risk",)),
    DemoUser("ravi", "Ravi Reviewer", "reviewer", teams=("model-risk",)),
    DemoUser("pat", "Pat Promoter", "release manager: promotes approved versions"),
    DemoUser("victor", "Victor Viewer", "viewer: reads the catalogue", teams=("fraud-team",)),
]
DEMO_TEAMS = ["fraud-team", "model-risk"]


@transaction.atomic
def seed_users() -> dict[str, User]:
    teams = {name: Group.objects.get_or_create(name=name)[0] for name in DEMO_TEAMS}
    users = {}
    for demo in DEMO_USERS:
        first, last = demo.full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=demo.username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{demo.username}@example.org",
                "is_staff": demo.is_superuser,
                "is_superuser": demo.is_superuser,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        users[demo.username] = user
        for team in demo.teams:  # the first demo user, the administrator, adds them
            team_membership_set(actor=users["admin"], team=teams[team], user=user, member=True)
    return users
