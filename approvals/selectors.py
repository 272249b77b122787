"""Reads of the review workflow and the audit log that more than one interface needs (the
dashboard, the JSON API, the MLflow API): each answers only what the user may see."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from approvals import services
from approvals.models import Alias
from audit.models import AuditEvent
from models_app.access import Role, visible_models


def audit_events(
    user,
    *,
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit events ``user`` may read, newest first: staff every event, others the events
    of models they may view. ``action`` ending in "." matches every action it starts."""
    events = AuditEvent.objects.all()
    if not (user.is_staff or user.is_superuser):
        events = events.filter(model__in=visible_models(user))
    if actor:
        events = events.filter(actor_username=actor)
    if action:
        events = (
            events.filter(action__startswith=action)
            if action.endswith(".")
            else events.filter(action=action)
        )
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lte=until)
    return events.order_by("-seq")


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


def alias_panel(model, *, at: str = "", alias: str = "") -> dict:
    """What the aliases page and the model page's panel show, in a fixed number of queries:
    the aliases, the rollback target, and which version ``alias`` (production by default)
    pointed at at the moment ``at`` (a datetime-local value, UTC; a bad one is reported in
    ``at_error``). ``model.user_roles`` must have been read with the model."""
    aliases = list(Alias.objects.filter(model=model).select_related("version"))
    error = ""
    when = at_version = None
    try:
        when = _parse_when(at)
    except ValidationError as e:
        error = e.messages[0]
    alias_name = alias or "production"
    if when is not None:
        at_version = services.alias_at(model, alias_name, when)
    return {
        "aliases": aliases,
        "rollback_target": services.rollback_target(model, "production", aliases=aliases),
        "version_choices": list(model.versions.values_list("number", "status")[:100]),
        "at": when,
        "at_alias": alias_name,
        "at_version": at_version,
        "at_error": error,
        "can_promote": Role.PROMOTE in model.user_roles,
        "can_edit": Role.EDIT in model.user_roles,
    }
