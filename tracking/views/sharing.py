"""The sharing page of an experiment: the model sharing page's grants and form, with the
experiment's roles. Manage role only."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from models_app.access import Role
from models_app.sharing import find_principal, grant_from_form, grants_of
from tracking.access import experiment_route, perm
from tracking.models import Experiment
from tracking.services import experiment_sharing_set
from tracking.views.experiments import crumbs


@dataclass(frozen=True)
class RoleChoice:
    value: str
    label: str


ROLE_CHOICES = [
    RoleChoice(Role.VIEW, "View: see the experiment, its runs and logged models"),
    RoleChoice(Role.EDIT, "Edit: start runs and log models in it"),
    RoleChoice(Role.MANAGE, "Manage: rename, delete, restore and share it"),
]


def _errors(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {"roles": error.messages}


@experiment_route(Role.MANAGE, methods=["GET", "POST"])
def experiment_sharing(request: HttpRequest, experiment: Experiment) -> HttpResponse:
    """List and change grants. Outsiders 404; viewers without manage 403."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            principal, roles = grant_from_form(request.POST)
            experiment_sharing_set(
                actor=request.user, experiment=experiment, principal=principal, roles=roles
            )
        except ValidationError as e:
            errors = _errors(e)
        else:
            messages.success(request, f"Sharing of experiment {experiment.name} updated.")
            return redirect("tracking:experiment_sharing", experiment.pk)
    detail = reverse("tracking:experiment_detail", args=[experiment.pk])
    context = {
        "nav_section": "experiments",
        "breadcrumbs": crumbs((experiment.name, detail), ("Sharing", None)),
        "experiment": experiment,
        "grants": [] if experiment.is_default else grants_of(experiment, perm_of=perm),
        "roles": ROLE_CHOICES,
        "errors": errors,
        "posted": request.POST if errors else {},
    }
    return render(request, "tracking/sharing.html", context, status=400 if errors else 200)


@experiment_route(Role.MANAGE, methods=["POST"])
def experiment_sharing_remove(request: HttpRequest, experiment: Experiment) -> HttpResponse:
    """Remove every role of one user or team. Manage role only (its creator always keeps
    every role)."""
    try:
        principal = find_principal(request.POST.get("kind", "user"), request.POST.get("name", ""))
        experiment_sharing_set(
            actor=request.user, experiment=experiment, principal=principal, roles=set()
        )
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(
            request, f"Removed {request.POST.get('name')} from experiment {experiment.name}."
        )
    return redirect("tracking:experiment_sharing", experiment.pk)
