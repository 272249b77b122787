"""Reads of the review workflow and the audit log that more than one interface needs (the
dashboard, the JSON API, the MLflow API): each answers only what the user may see."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import Alias, AliasAssignment
from audit.models import AuditEvent
from models_app.access import Role, models_with_role, visible_models
from models_app.models import ModelVersion, RegisteredModel


def audit_events(
    user,
    *,
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit events ``user`` may read, newest first: superusers every event, everyone
    else (staff included) the events of models they may view. ``action`` ending in "."
    matches every action it starts."""
    events = AuditEvent.objects.all()
    if not user.is_superuser:
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
        at_version = alias_at(model, alias_name, when)
    return {
        "aliases": aliases,
        "rollback_target": rollback_target(model, "production", aliases=aliases),
        "version_choices": list(model.versions.values_list("number", "status")[:100]),
        "at": when,
        "at_alias": alias_name,
        "at_version": at_version,
        "at_error": error,
        "can_promote": Role.PROMOTE in model.user_roles,
        "can_edit": Role.EDIT in model.user_roles,
    }


def production_of(model: RegisteredModel) -> ModelVersion | None:
    alias = Alias.objects.filter(model=model, name="production").select_related("version").first()
    return alias.version if alias else None


def versions_waiting_for(user):
    """Versions in review that ``user`` may review and has not decided yet."""
    return (
        ModelVersion.objects.filter(
            status=ModelVersion.Status.IN_REVIEW, model__in=models_with_role(user, Role.REVIEW)
        )
        .exclude(Q(created_by=user) | Q(submitted_by=user))
        .exclude(reviews__reviewer=user, reviews__discarded_at__isnull=True)
    )


def rollback_target(
    model: RegisteredModel, name: str = "production", *, aliases: list[Alias] | None = None
) -> ModelVersion | None:
    """The version that held the alias before the current one was put there. ``aliases``:
    the model's aliases when the caller has them loaded already."""
    if aliases is None:
        alias = Alias.objects.filter(model=model, name=name).first()
    else:
        alias = next((a for a in aliases if a.name == name), None)
    if alias is None:
        return None
    last_promotion = (
        AliasAssignment.objects.filter(
            model=model,
            alias_name=name,
            version_id=alias.version_id,
            kind=AliasAssignment.Kind.PROMOTE,
        )  # fmt: skip
        .select_related("previous_version")
        .first()
    )
    if last_promotion is None or last_promotion.previous_version is None:
        return None
    return last_promotion.previous_version


def alias_at(model: RegisteredModel, name: str, when: datetime) -> ModelVersion | None:
    """What did ``name`` point at, at ``when``? (None: it did not exist then.)"""
    entry = (
        AliasAssignment.objects.filter(model=model, alias_name=name, assigned_at__lte=when)
        .select_related("version")
        .first()
    )
    if entry is None or entry.kind == AliasAssignment.Kind.REMOVE:
        return None
    return entry.version
