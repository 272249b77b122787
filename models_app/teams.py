"""Team membership. Teams are django.contrib.auth groups; a team's roles on models reach its
members (models_app.access), so who is in a team decides who may see, edit, review or manage
those models, and every change of membership is audited like a change of roles."""

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from audit import chain

Membership = User.groups.through


def may_change_teams(actor) -> bool:
    """Superusers, and staff the admin lets change users or teams."""
    return (
        actor.is_superuser
        or actor.has_perm("auth.change_user")
        or actor.has_perm("auth.change_group")
    )


def team_membership_set(*, actor, team: Group, user: User, member: bool) -> bool:
    """Make ``user`` a member of ``team`` or not; whether anything changed. ``actor`` None is
    the system itself (demo data)."""
    if actor is not None and not may_change_teams(actor):
        raise PermissionDenied("Changing team membership needs the admin's change permission.")
    with transaction.atomic():
        if member:
            changed = Membership.objects.get_or_create(user=user, group=team)[1]
        else:
            changed = Membership.objects.filter(user=user, group=team).delete()[0] > 0
        if changed:
            chain.record(
                actor=actor,
                action="team.member_added" if member else "team.member_removed",
                target=team,
                after={"team": team.name, "user": user.get_username(), "member": member},
            )
    return changed


def team_members_set(*, actor, team: Group, users) -> None:
    """Make exactly ``users`` the members of ``team``, one audited change per member."""
    wanted = {u.pk: u for u in users}
    with transaction.atomic():
        current = {u.pk: u for u in User.objects.filter(groups=team)}
        for pk in sorted(current.keys() - wanted.keys()):
            team_membership_set(actor=actor, team=team, user=current[pk], member=False)
        for pk in sorted(wanted.keys() - current.keys()):
            team_membership_set(actor=actor, team=team, user=wanted[pk], member=True)


def user_teams_set(*, actor, user: User, teams) -> None:
    """Make ``user`` a member of exactly ``teams``, one audited change per team."""
    wanted = {t.pk: t for t in teams}
    with transaction.atomic():
        current = {t.pk: t for t in Group.objects.filter(user=user)}
        for pk in sorted(current.keys() - wanted.keys()):
            team_membership_set(actor=actor, team=current[pk], user=user, member=False)
        for pk in sorted(wanted.keys() - current.keys()):
            team_membership_set(actor=actor, team=wanted[pk], user=user, member=True)
