"""Reads of the review workflow and the audit log that more than one interface needs (the
dashboard, the JSON API, the MLflow API): each answers only what the user may see."""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import CharField, IntegerField, Q, QuerySet, Value
from django.utils import timezone

from approvals import expiry
from approvals.models import Alias, AliasAssignment, ReviewPolicy
from audit.models import AuditEvent
from models_app.access import Role, models_with_role, visible_models
from models_app.models import ModelVersion, RegisteredModel
from models_app.names import name_key


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


PRIVATE_VERSION = "a private version"


def _parent_refs(events: list[AuditEvent]) -> list[dict]:
    """The parents named in the events' before/after (version.updated, version.deleted)."""
    return [
        parent
        for e in events
        for state in (e.before, e.after)
        if isinstance(state, dict) and isinstance(state.get("parents"), list)
        for parent in state["parents"]
        if isinstance(parent, dict)
    ]


def redact_lineage(events: Iterable[AuditEvent], user) -> list[AuditEvent]:
    """The events with every parent version ``user`` may not view replaced by "a private
    version", for showing (the audit page, its CSV, the JSON API): one query for them all.

    Parents are stored by version id and name (by name only in events older than issue 15);
    an id is checked against the models the user may view, a name resolved to such a model,
    and what cannot be resolved is redacted. Only the loaded copies change: the chain hash
    covers the stored JSON, which is never rewritten."""
    events = list(events)
    if user.is_superuser:
        return events
    refs = _parent_refs(events)
    if not refs:
        return events
    ids = {p["version_id"] for p in refs if isinstance(p.get("version_id"), int)}
    keys = {
        name_key(p["model"])
        for p in refs
        if "version_id" not in p or p["version_id"] is None
        if isinstance(p.get("model"), str)
    }
    visible = visible_models(user)
    by_id = (
        ModelVersion.objects.filter(pk__in=ids, model__in=visible)
        .order_by()
        .values_list("pk", Value("", output_field=CharField()))
    )
    by_name = (
        visible.filter(name_key__in=keys)
        .order_by()
        .values_list(Value(0, output_field=IntegerField()), "name_key")
    )
    shown_ids, shown_keys = set(), set()
    for pk, key in by_id.union(by_name, all=True).order_by():
        shown_ids.add(pk)
        shown_keys.add(key)
    for e in events:
        e.before, e.after = (
            _redacted(state, shown_ids, shown_keys) for state in (e.before, e.after)
        )
    return events


def _shown(parent: dict, ids: set, keys: set) -> bool:
    if parent.get("version_id") is not None:
        return parent["version_id"] in ids
    model = parent.get("model")
    return isinstance(model, str) and name_key(model) in keys


def _redacted(state, ids: set, keys: set):
    if not (isinstance(state, dict) and isinstance(state.get("parents"), list)):
        return state
    parents = [
        p
        if not isinstance(p, dict) or _shown(p, ids, keys)
        else {"model": PRIVATE_VERSION, **({"relation": p["relation"]} if "relation" in p else {})}
        for p in state["parents"]
    ]
    return state | {"parents": parents}


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
    ``at_error``), and the policy's ``approval_valid_days`` (each alias's version carries its
    ``approval_expiry``). ``model.user_roles`` must have been read with the model."""
    aliases = list(Alias.objects.filter(model=model).select_related("version"))
    valid_days = expiry.valid_days_of(model)
    with_approval_expiry([a.version for a in aliases], valid_days)
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
        "approval_valid_days": valid_days,
        "can_promote": Role.PROMOTE in model.user_roles,
        "can_edit": Role.EDIT in model.user_roles,
        # What signing a move of production or staging asks (docs/signatures.md); read only
        # for those who may move them.
        "signing_policy": (
            ReviewPolicy.objects.filter(model=model, signatures_required=True).first()
            if Role.PROMOTE in model.user_roles
            else None
        ),
    }


def with_approval_expiry(versions, valid_days: int | None, now=None) -> list[ModelVersion]:
    """The versions as a list, each with ``approval_expiry`` set (for templates), for a
    model whose policy's ``approval_valid_days`` is ``valid_days``."""
    now = now or timezone.now()
    versions = list(versions)
    for v in versions:
        v.approval_expiry = expiry.expiry_of(v, valid_days, now)
    return versions


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


def revalidation_due_for(user, now=None) -> list[ModelVersion]:
    """Approved versions of models ``user`` reviews whose approval has expired, oldest
    approval first, in one query (``approval_expiry`` set on each)."""
    versions = ModelVersion.objects.filter(
        model__in=models_with_role(user, Role.REVIEW)
    ).select_related("model")
    return expiry.due_among(versions, now)


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
