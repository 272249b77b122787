"""Small explicit factories for tests."""

from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery-staple"


def user(username: str, **fields) -> User:
    u = User.objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD, **fields
    )
    return u


def team(name: str, *members: User) -> Group:
    g = Group.objects.create(name=name)
    g.user_set.add(*members)
    return g
