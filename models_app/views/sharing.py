"""The sharing page of a model: who holds which role. Manage role only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.errors import Conflict
from models_app.access import Role, model_route
from models_app.models import RegisteredModel
from models_app.sharing import find_principal, grant_from_form, grants_for, sharing_set


@model_route(Role.MANAGE, methods=["GET", "POST"])
def model_sharing(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """List and change grants. Outsiders 404; viewers without manage 403."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            principal, roles = grant_from_form(request.POST)
            sharing_set(actor=request.user, model=model, principal=principal, roles=roles)
        except ValidationError as e:
            errors = e.message_dict
        except Conflict as e:
            errors = {"roles": [str(e)]}
        else:
            messages.success(request, f"Sharing of {model.name} updated.")
            return redirect("models_app:model_sharing", model.slug)
    context = {
        "model": model,
        "grants": grants_for(model),
        "roles": list(Role),
        "access_note": (
            "Being internal, every signed-in user may also view this model."
            if model.visibility == RegisteredModel.Visibility.INTERNAL
            else ""
        ),
        "errors": errors,
        "posted": request.POST if errors else {},
        "nav_section": "models",
        "breadcrumbs": [
            ("Models", "/models/"),
            (model.name, model.get_absolute_url()),
            ("Sharing", None),
        ],
    }
    return render(request, "models_app/sharing.html", context, status=400 if errors else 200)


@model_route(Role.MANAGE, methods=["POST"])
def model_sharing_remove(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Remove every role of one user or team. Manage role only; the last manager stays."""
    try:
        principal = find_principal(request.POST.get("kind", "user"), request.POST.get("name", ""))
        sharing_set(actor=request.user, model=model, principal=principal, roles=set())
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    except Conflict as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Removed {request.POST.get('name')} from {model.name}.")
    return redirect("models_app:model_sharing", model.slug)
