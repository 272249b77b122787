"""A model's aliases: current pointers, promotion, rollback, removal, and their history."""

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals import services
from approvals.models import Alias, AliasAssignment
from models_app.access import Role, get_model_for_user
from models_app.errors import Conflict
from models_app.models import ModelVersion
from registry_site.access import MODEL_ALIAS, MODEL_VIEW, access


def _parse_when(raw: str) -> datetime | None:
    """A datetime-local value (UTC, as the page says), or None when empty."""
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError("Give a date and time like 2026-03-01T14:00.") from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.UTC)
    return when


def aliases_context(request: HttpRequest, model) -> dict:
    """What the aliases page and the model page's panel show (a fixed number of queries)."""
    aliases = list(Alias.objects.filter(model=model).select_related("version"))
    error = ""
    at = at_version = None
    try:
        at = _parse_when(request.GET.get("at", ""))
    except ValidationError as e:
        error = e.messages[0]
    alias_name = request.GET.get("alias") or "production"
    if at is not None:
        at_version = services.alias_at(model, alias_name, at)
    return {
        "aliases": aliases,
        "rollback_target": services.rollback_target(model, "production", aliases=aliases),
        "version_choices": list(model.versions.values_list("number", "status")[:100]),
        "at": at,
        "at_alias": alias_name,
        "at_version": at_version,
        "at_error": error,
        "can_promote": Role.PROMOTE in model.user_roles,
        "can_edit": Role.EDIT in model.user_roles,
    }


@access(MODEL_VIEW)
@require_GET
def alias_page(request: HttpRequest, slug: str) -> HttpResponse:
    """View role: aliases, full history, and what an alias pointed at at a given time."""
    model = get_model_for_user(request.user, slug, Role.VIEW)
    context = aliases_context(request, model)
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
        context = aliases_context(request, model)
        context.update(nav_section="models", model=model)
        return render(request, "approvals/aliases.html", context, status=status)
    messages.success(request, success)
    return redirect("approvals:aliases", model.slug)


@access(MODEL_ALIAS)
@require_POST
def alias_set(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit role for ordinary aliases; production/staging need promote and an approved version
    (checked by the service, which answers 403 or 409)."""
    model = get_model_for_user(request.user, slug, Role.VIEW)
    name = request.POST.get("alias", "")
    raw = request.POST.get("version", "")
    version = (
        ModelVersion.objects.filter(model=model, number=int(raw)).first() if raw.isdigit() else None
    )
    if version is None:
        messages.error(request, "Pick a version of this model.")
        context = aliases_context(request, model)
        context.update(nav_section="models", model=model)
        return render(request, "approvals/aliases.html", context, status=400)
    return _done(
        request, model,
        lambda: services.alias_set(
            actor=request.user, model=model, name=name, version=version,
            note=request.POST.get("note", ""),
        ),
        f"{name} now points at version {version.number}.",
    )  # fmt: skip


@access(MODEL_ALIAS)
@require_POST
def rollback(request: HttpRequest, slug: str) -> HttpResponse:
    """Promote role (for production): one click back to the previous version, with a reason."""
    model = get_model_for_user(request.user, slug, Role.VIEW)
    name = request.POST.get("alias", "production")
    return _done(
        request, model,
        lambda: services.alias_rollback(
            actor=request.user, model=model, name=name, reason=request.POST.get("reason", "")
        ),
        f"{name} rolled back.",
    )  # fmt: skip


@access(MODEL_ALIAS)
@require_POST
def alias_delete(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """Edit role (promote for protected aliases): remove an alias; its history stays."""
    model = get_model_for_user(request.user, slug, Role.VIEW)
    return _done(
        request, model,
        lambda: services.alias_delete(
            actor=request.user, model=model, name=name, note=request.POST.get("note", "")
        ),
        f"Alias {name} removed.",
    )  # fmt: skip
