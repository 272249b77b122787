import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.chain import verify_chain
from audit.models import AuditEvent
from models_app.teams import team_membership_set
from registry_site.demo import seed_users

pytestmark = pytest.mark.django_db


def membership_events():
    return list(
        AuditEvent.objects.filter(action__startswith="team.")
        .order_by("seq")
        .values_list("action", "actor_username", "target_label", "after")
    )


def user_form(user, teams) -> dict:
    """The admin's user change form as the browser posts it."""
    joined = user.date_joined
    return {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "groups": [t.pk for t in teams],
        "user_permissions": [],
    }


def test_changing_a_users_teams_in_the_admin_is_audited(client_for, superuser, viewer):
    team = Group.objects.create(name="fraud-team")
    url = reverse("admin:auth_user_change", args=[viewer.pk])
    client = client_for(superuser)
    assert client.post(url, user_form(viewer, [team])).status_code == 302
    assert list(viewer.groups.all()) == [team]
    assert client.post(url, user_form(viewer, [])).status_code == 302
    assert not viewer.groups.exists()
    assert membership_events() == [
        (
            "team.member_added",
            "root",
            "fraud-team",
            {"team": "fraud-team", "user": "viewer", "member": True},
        ),
        (
            "team.member_removed",
            "root",
            "fraud-team",
            {"team": "fraud-team", "user": "viewer", "member": False},
        ),
    ]
    assert verify_chain().ok


def test_changing_a_teams_members_in_the_admin_is_audited(client_for, superuser, viewer, editor):
    team = Group.objects.create(name="fraud-team")
    team.user_set.add(editor)
    url = reverse("admin:auth_group_change", args=[team.pk])
    client = client_for(superuser)
    page = client.get(url).content.decode()
    assert 'name="members"' in page
    form = {"name": "fraud-team", "permissions": [], "members": [viewer.pk]}
    assert client.post(url, form).status_code == 302
    assert list(team.user_set.all()) == [viewer]
    assert [(a, who, e["user"]) for a, who, _, e in membership_events()] == [
        ("team.member_removed", "root", "editor"),
        ("team.member_added", "root", "viewer"),
    ]
    assert client.post(url, form).status_code == 302  # nothing changed: no event
    assert len(membership_events()) == 2
    assert verify_chain().ok


def test_a_new_team_with_members_is_audited(client_for, superuser, viewer):
    form = {"name": "model-risk", "permissions": [], "members": [viewer.pk]}
    assert client_for(superuser).post(reverse("admin:auth_group_add"), form).status_code == 302
    assert [(a, e["team"], e["user"]) for a, _, _, e in membership_events()] == [
        ("team.member_added", "model-risk", "viewer")
    ]


def test_membership_service_refuses_users_without_the_admins_permission(owner, viewer):
    team = Group.objects.create(name="fraud-team")
    with pytest.raises(PermissionDenied):
        team_membership_set(actor=owner, team=team, user=owner, member=True)
    assert not owner.groups.exists()
    assert membership_events() == []


def test_demo_teams_are_audited():

    users = seed_users()
    events = membership_events()
    assert ("team.member_added", "admin", "fraud-team") in [e[:3] for e in events]
    assert len(events) == sum(u.groups.count() for u in users.values())
