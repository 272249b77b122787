"""Sharing a model: granting roles to users and teams, and listing who holds what.

Roles are stored as guardian object permissions (see models_app.access). Each change locks the
model row, refuses to leave the model without a manager, and is audited in its transaction.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, get_groups_with_perms, get_users_with_perms, remove_perm

from audit import chain
from core.errors import Conflict
from models_app.access import Role, require
from models_app.models import (
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
)


@dataclass
class Grant:
    principal: User | Group
    roles: set[Role]

    @property
    def kind(self) -> str:
        return "team" if isinstance(self.principal, Group) else "user"

    @property
    def name(self) -> str:
        p = self.principal
        return p.name if isinstance(p, Group) else p.get_username()

    @property
    def top_roles(self) -> list[Role]:
        """The roles to show: those not implied by another role held."""
        implied = {r for role in self.roles for r in role.implied if r != role}
        return [r for r in Role if r in self.roles and r not in implied]


def _roles_from_perms(perms) -> set[Role]:
    return {role for role in Role if role.perm in perms}


def grants_for(model: RegisteredModel) -> list[Grant]:
    """Everyone holding a role on the model directly: teams first, then users, by name."""
    groups = get_groups_with_perms(model, attach_perms=True)
    users = get_users_with_perms(model, attach_perms=True, with_group_users=False)
    rows = [Grant(g, _roles_from_perms(p)) for g, p in groups.items()]
    rows.sort(key=lambda g: g.name.lower())
    user_rows = [Grant(u, _roles_from_perms(p)) for u, p in users.items()]
    user_rows.sort(key=lambda g: g.name.lower())
    return [g for g in rows + user_rows if g.roles]


def find_principal(kind: str, name: str) -> User | Group:
    name = (name or "").strip()
    if kind == "team":
        group = Group.objects.filter(name=name).first()
        if group is None:
            raise ValidationError({"name": [f"No team named {name!r}."]})
        return group
    user = User.objects.filter(username=name, is_active=True).first()
    if user is None:
        raise ValidationError({"name": [f"No active user named {name!r}."]})
    return user


def _expand(roles: set[Role]) -> set[Role]:
    return {r for role in roles for r in role.implied}


def _has_a_manager(model: RegisteredModel) -> bool:
    perm = Role.MANAGE.perm
    users = get_users_with_perms(model, only_with_perms_in=[perm], with_group_users=True)
    return users.filter(is_active=True).exists()


def _label(principal) -> str:
    return f"team {principal.name}" if isinstance(principal, Group) else principal.get_username()


def _current(model: RegisteredModel, principal) -> set[Role]:
    """Roles granted to exactly this user or team (not through a team)."""
    if isinstance(principal, Group):
        rows = RegisteredModelGroupObjectPermission.objects.filter(group=principal)
    else:
        rows = RegisteredModelUserObjectPermission.objects.filter(user=principal)
    codenames = rows.filter(content_object=model).values_list("permission__codename", flat=True)
    return _roles_from_perms(set(codenames))


def sharing_set(*, actor, model: RegisteredModel, principal, roles: set[Role]) -> set[Role]:
    """Give ``principal`` exactly these roles (plus the ones they imply); empty removes all.
    Manage role."""
    require(actor, model, Role.MANAGE)
    wanted = _expand(set(roles))
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        before = _current(model, principal)
        for role in Role:
            if role in wanted and role not in before:
                assign_perm(role.perm, principal, model)
            elif role not in wanted and role in before:
                remove_perm(role.perm, principal, model)
        if Role.MANAGE in before and Role.MANAGE not in wanted and not _has_a_manager(model):
            raise Conflict(
                f"{_label(principal)} is the last manager of {model.name}: give someone else "
                "the manage role first."
            )
        if before != wanted:
            chain.record(
                actor=actor,
                action="sharing.changed",
                target=model,
                model=model,
                before={"principal": _label(principal), "roles": sorted(before)},
                after={"principal": _label(principal), "roles": sorted(wanted)},
            )
    return wanted
