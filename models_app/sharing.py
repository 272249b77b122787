"""Sharing a model: granting roles to users and teams, and listing who holds what.

Roles are stored as guardian object permissions (see models_app.access). Each change locks the
model row, refuses to leave the model without a manager, and is audited in its transaction.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, get_users_with_perms, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

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
    return grants_of(model, perm_of=lambda role: role.perm)


def grants_of(obj, *, perm_of: Callable[[Role], str]) -> list[Grant]:
    """Everyone holding a role directly on ``obj`` (a model, an experiment: anything whose
    roles are guardian permissions named ``perm_of(role)`` kept in its own foreign-key
    tables): teams first, then users, by name. Two queries however many grants."""
    by_codename = {perm_of(role): role for role in Role}
    held: dict[tuple[str, int], Grant] = {}
    for table, who in (
        (get_group_obj_perms_model(obj), "group"),
        (get_user_obj_perms_model(obj), "user"),
    ):
        rows = table.objects.filter(content_object=obj).select_related(who, "permission")
        for row in rows:
            role = by_codename.get(row.permission.codename)
            if role is not None:
                principal = getattr(row, who)
                held.setdefault((who, principal.pk), Grant(principal, set())).roles.add(role)
    return sorted(held.values(), key=lambda g: (g.kind == "user", g.name.lower()))


def roles_from_form(values: Iterable[str]) -> set[Role]:
    """The roles ticked on a sharing form; an unknown one is a form error."""
    chosen = set()
    for value in values:
        try:
            chosen.add(Role(value))
        except ValueError:
            raise ValidationError({"roles": [f"Unknown role {value!r}."]}) from None
    return chosen


def grant_from_form(data: Mapping) -> tuple[User | Group, set[Role]]:
    """Who (``kind`` user or team, ``name``) and which roles (at least one) a sharing form
    asks for; ValidationError by field otherwise. ``data`` is request.POST."""
    kind = data.get("kind", "user")
    if kind not in ("user", "team"):
        raise ValidationError({"kind": ["Choose a user or a team."]})
    principal = find_principal(kind, data.get("name", ""))
    roles = roles_from_form(data.getlist("roles"))
    if not roles:
        raise ValidationError({"roles": ["Pick at least one role (or use Remove)."]})
    return principal, roles


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
