"""A model's aliases: current pointers, promotion, rollback, removal, and their history."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from approvals import services
from approvals.models import AliasAssignment
from approvals.selectors import alias_panel
from approvals.views.signing import signature_from
from core.errors import Conflict
from core.rules import MODEL_ALIAS
from models_app.access import Role, model_route
from models_app.models import ModelVersion, RegisteredModel


@model_route(Role.VIEW, methods=["GET"])
def alias_page(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """View role: aliases, full history, and what an alias pointed at at a given time."""
    context = alias_panel(model, at=request.GET.get("at", ""), alias=request.GET.get("alias", ""))
    history = AliasAssignment.objects.filter(model=model).select_related("assigned_by")
    context.update(
        nav_section="models",
        model=model,
        history=Paginator(history, 20).get_page(request.GET.get("page")),
        breadcrumbs=[
            ("Models", "/models/"),
            (model.name, model.get_absolute_url()),
            ("Aliases", None),
        ],  # fmt: skip
    )
    return render(
        request, "approvals/aliases.html", context, status=400 if context["at_error"] else 200
    )


def _done(request, model, call, success: str) -> HttpResponse:
    try:
        call()
    except (Conflict, PermissionDenied, ValidationError) as e:
        text = " ".join(e.messages) if isinstance(e, ValidationError) else str(e)
        messages.error(request, text)
        status = 409 if isinstance(e, Conflict) else 403 if isinstance(e, PermissionDenied) else 400
        context = alias_panel(
            model, at=request.GET.get("at", ""), alias=request.GET.get("alias", "")
        )
        context.update(nav_section="models", model=model)
        return render(request, "approvals/aliases.html", context, status=status)
    messages.success(request, success)
    return redirect("approvals:aliases", model.slug)


@model_route(Role.VIEW, rule=MODEL_ALIAS, methods=["POST"])
def alias_set(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Edit role for ordinary aliases; production/staging need promote and an approved version
    (checked by the service, which answers 403 or 409)."""
    name = request.POST.get("alias", "")
    raw = request.POST.get("version", "")
    version = (
        ModelVersion.objects.filter(model=model, number=int(raw)).first() if raw.isdigit() else None
    )
    if version is None:
        messages.error(request, "Pick a version of this model.")
        context = alias_panel(
            model, at=request.GET.get("at", ""), alias=request.GET.get("alias", "")
        )
        context.update(nav_section="models", model=model)
        return render(request, "approvals/aliases.html", context, status=400)
    return _done(
        request, model,
        lambda: services.alias_set(
            actor=request.user, model=model, name=name, version=version,
            note=request.POST.get("note", ""), signature=signature_from(request),
        ),
        f"{name} now points at version {version.number}.",
    )  # fmt: skip


@model_route(Role.VIEW, rule=MODEL_ALIAS, methods=["POST"])
def rollback(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Promote role (for production): one click back to the previous version, with a reason."""
    name = request.POST.get("alias", "production")
    return _done(
        request, model,
        lambda: services.alias_rollback(
            actor=request.user, model=model, name=name, reason=request.POST.get("reason", ""),
            signature=signature_from(request),
        ),
        f"{name} rolled back.",
    )  # fmt: skip


@model_route(Role.VIEW, rule=MODEL_ALIAS, methods=["POST"])
def alias_delete(request: HttpRequest, model: RegisteredModel, name: str) -> HttpResponse:
    """Edit role (promote for protected aliases): remove an alias; its history stays. Removing
    production or staging is signed where the policy requires signatures."""
    return _done(
        request, model,
        lambda: services.alias_delete(
            actor=request.user, model=model, name=name, note=request.POST.get("note", ""),
            signature=signature_from(request),
        ),
        f"Alias {name} removed.",
    )  # fmt: skip
