"""Sharing an experiment with a user or a team: the roles of models (view, edit, manage; a
role brings the ones it implies), kept as django-guardian object permissions on the
experiment. Its creator always manages it."""

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from audit import chain
from models_app.access import Role
from tracking.access import EXPERIMENT_ROLES, perm, require_experiment
from tracking.models import (
    Experiment,
    ExperimentGroupObjectPermission,
    ExperimentUserObjectPermission,
)


def _label(principal) -> str:
    return f"team {principal.name}" if isinstance(principal, Group) else principal.get_username()


def _current(experiment: Experiment, principal) -> set[Role]:
    if isinstance(principal, Group):
        rows = ExperimentGroupObjectPermission.objects.filter(group=principal)
    else:
        rows = ExperimentUserObjectPermission.objects.filter(user=principal)
    codenames = set(
        rows.filter(content_object=experiment).values_list("permission__codename", flat=True)
    )
    return {role for role in EXPERIMENT_ROLES if perm(role) in codenames}


def experiment_sharing_set(
    *, actor, experiment: Experiment, principal, roles: set[Role]
) -> set[Role]:
    """Give ``principal`` (a user or a team) exactly these roles on the experiment, with the
    ones they imply; an empty set removes every grant. Manage role. Experiment 0 is everyone's
    already and is not shared."""
    require_experiment(actor, experiment, Role.MANAGE)
    if experiment.is_default:
        raise ValidationError("The Default experiment (0) is open to everyone; it is not shared.")
    unknown = set(roles) - set(EXPERIMENT_ROLES)
    if unknown:
        raise ValidationError(f"Experiments have no {sorted(unknown)[0]} role.")
    wanted = {r for role in roles for r in role.implied if r in EXPERIMENT_ROLES}
    with transaction.atomic():
        Experiment.objects.select_for_update().get(pk=experiment.pk)
        before = _current(experiment, principal)
        for role in EXPERIMENT_ROLES:
            if role in wanted and role not in before:
                assign_perm(perm(role), principal, experiment)
            elif role not in wanted and role in before:
                remove_perm(perm(role), principal, experiment)
        if before != wanted:
            chain.record(
                actor=actor,
                action="experiment.sharing_changed",
                target=experiment,
                before={"principal": _label(principal), "roles": sorted(before)},
                after={"principal": _label(principal), "roles": sorted(wanted)},
            )
    return wanted
