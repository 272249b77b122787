"""Reads of the review workflow and the audit log that more than one interface needs (the
dashboard, the JSON API, the MLflow API): each answers only what the user may see."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import (
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from approvals import expiry
from approvals.models import Alias, AliasAssignment, Review, ReviewPolicy, Signature
from audit.chain import compute_hash
from audit.models import AuditEvent
from models_app.access import Role, models_with_role, visible_models
from models_app.models import ModelVersion, RegisteredModel
from models_app.names import name_key
from tracking.access import visible_experiments, visible_logged_models, visible_runs


def audit_events(
    user,
    *,
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit events ``user`` may read, newest first: superusers every event, everyone
    else (staff included) the events of models they may view and those of the experiments,
    runs and logged models they may view (tracking.access). ``action`` ending in "."
    matches every action it starts."""
    events = AuditEvent.objects.all()
    if not user.is_superuser:
        events = events.filter(Q(model__in=visible_models(user)) | _tracking_targets(user))
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


def _tracking_targets(user) -> Q:
    """Events whose target is an experiment, run or logged model the user may view (the
    tracking services record those as their target; they name no registered model). Subqueries
    on the (target_type, target_id) index: no query of their own."""
    experiments = visible_experiments(user).values(text_pk=Cast("pk", CharField()))
    return (
        Q(target_type="experiment", target_id__in=experiments)
        | Q(target_type="run", target_id__in=visible_runs(user).values("pk"))
        | Q(target_type="loggedmodel", target_id__in=visible_logged_models(user).values("pk"))
    )


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
    for a in aliases:
        a.version.model = model  # (links to each version need its model: no query per alias)
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


def version_approval_expiry(version: ModelVersion, now=None) -> expiry.Expiry:
    """Whether ``version``'s approval is due for revalidation (the version page's badge): one
    query (its model's policy), whatever the version's status, so the page's count is the same
    before and after a decision."""
    return expiry.expiry_of(version, expiry.valid_days_of(version.model), now)


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
        .exclude(
            Exists(
                Review.objects.filter(
                    version=OuterRef("pk"), reviewer=user, discarded_at__isnull=True
                )
            )
        )
    )


def _count(rows: QuerySet, field: str = "pk"):
    """How many distinct ``field`` values ``rows`` have, as a subquery of another query."""
    counted = (
        rows.order_by().annotate(all=Value(1)).values("all").annotate(n=Count(field, distinct=True))
    )
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


def waiting_count(user) -> int:
    """How many versions wait for ``user`` (versions_waiting_for(user).count()), read from the
    models' in-review counters rather than every version in review: the in-review versions
    of the models ``user`` may review, less those ``user`` registered, submitted or has
    reviewed already (found through the user's own rows: the indexes on the author and the
    submitter of in-review versions, the reviewer's standing reviews (review_standing_idx)
    joined to the in-review versions' keys (version_in_review_key_idx), both read alone).

    A superuser: one query. Anyone else: two, the ids of the models they may review first,
    then the count with those ids written into it (``__among``, core/lookups.py). (As one
    query PostgreSQL guessed the grants at a handful of models when a reviewer held 714, and
    planned the count for a handful: it walked every in-review version of those models, 60 ms
    on every page. With the ids in hand it knows how many there are; tests/scale checks the
    plan. As 3 × 714 bound parameters they cost 10 ms to bind, on every page.)"""
    if not user.is_authenticated or not user.is_active:
        return 0
    models = RegisteredModel.objects.all()
    of_models = {}
    if not user.is_superuser:
        ids = list(models_with_role(user, Role.REVIEW).order_by().values_list("pk", flat=True))
        if not ids:
            return 0
        models = models.filter(pk__among=ids)
        of_models = {"model_id__among": ids}
    own = ModelVersion.objects.filter(
        Q(created_by=user) | Q(submitted_by=user), status=ModelVersion.Status.IN_REVIEW, **of_models
    )
    # (From the user's own standing reviews, joined to their versions: not from every
    # in-review version of the reviewable models.)
    reviewed = (
        Review.objects.filter(
            reviewer=user,
            discarded_at__isnull=True,
            version__status=ModelVersion.Status.IN_REVIEW,
            **{f"version__{k}": v for k, v in of_models.items()},
        )
        .exclude(version__created_by=user)
        .exclude(version__submitted_by=user)
    )
    total = models.order_by().aggregate(
        n=Coalesce(Sum("in_review_count"), 0) - _count(own) - _count(reviewed, "version")
    )
    return total["n"]


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


# ---------------------------------------------------------------------------------------------
# Electronic signatures: what is shown (docs/signatures.md, "Where a signature is shown") and
# how each is checked against the audit event written with it ("Checking signatures").

# The audit event each kind of signature is written with.
SIGNED_EVENTS = {
    Signature.Action.APPROVE: "review.approved",
    Signature.Action.REJECT: "review.rejected",
    Signature.Action.PROMOTE: "alias.moved",
    Signature.Action.ROLLBACK: "alias.rolled_back",
    Signature.Action.REMOVE: "alias.removed",
}

VALID, WITHDRAWN, SUPERSEDED = "valid", "withdrawn", "superseded"
STANDING_LABELS = {
    VALID: "valid",
    WITHDRAWN: "withdrawn (its review was discarded when the version was withdrawn)",
    SUPERSEDED: "superseded (the alias was moved again later)",
}


def _signatures() -> QuerySet[Signature]:
    later_move = AliasAssignment.objects.filter(
        model_id=OuterRef("alias_assignment__model_id"),
        alias_name=OuterRef("alias_name"),
        pk__gt=OuterRef("alias_assignment_id"),
    )
    return (
        Signature.objects.select_related("version", "review", "alias_assignment")
        .annotate(superseded=Exists(later_move))
        .order_by("signed_at", "pk")
    )


def _parse_time(raw) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when if timezone.is_aware(when) else None


# Imported signatures name events of an imported history, which the exchange app keeps (it sits
# above this one): it registers how to read them in its AppConfig.ready(). The callable takes
# [(batch id, seq)] and answers {(batch id, seq): event}.
_imported_events: list = []


def read_imported_events_with(lookup) -> None:
    """Called once by the exchange app."""
    _imported_events[:] = [lookup]


def signature_problems(signature: Signature, event) -> list[str]:
    """Why ``signature`` does not verify against ``event`` (the audit event of its
    ``audit_seq``, None when there is none): empty when it verifies. A signature verifies when
    its event exists, is unmodified and has the hash the signature records, is the event of its
    action, about its version, made by its signer, and carries the same meaning, printed name,
    time, reason and content digest. A row copied or moved to another record, or edited, fails."""
    seq = signature.audit_seq
    if event is None:
        return [f"its audit event #{seq} does not exist"]
    problems = []
    if event.hash != signature.audit_hash:
        problems.append(f"audit event #{seq} does not have the hash the signature records")
    if compute_hash(event) != event.hash:
        problems.append(f"audit event #{seq} was modified")
    expected = SIGNED_EVENTS.get(signature.action)
    if event.action != expected:
        problems.append(f"audit event #{seq} records {event.action}, not {expected}")
    imported = signature.imported_batch_id is not None
    if signature.version_id is not None and not imported:
        same_target = event.target_type == "modelversion" and event.target_id == str(
            signature.version_id
        )
    else:  # the version's row was deleted, or ids are another registry's: names and numbers
        same_target = event.target_label == f"{signature.model_name} v{signature.version_number}"
    if not same_target:
        problems.append(f"audit event #{seq} is about another version ({event.target_label})")
    if (
        event.actor_username != signature.signer_username
        if imported
        else event.actor_id != signature.signer_id
    ):
        problems.append(f"audit event #{seq} was made by {event.actor_username}, not the signer")
    after = event.after if isinstance(event.after, dict) else {}
    if "signature_meaning" not in after:
        problems.append(f"audit event #{seq} carries no signature")
    else:
        if after.get("signature_meaning") != signature.meaning:
            problems.append("the meaning differs from the one in the audit event")
        if after.get("signer_name") != signature.printed_name:
            problems.append("the printed name differs from the one in the audit event")
        if _parse_time(after.get("signed_at")) != signature.signed_at:
            problems.append("the time differs from the one in the audit event")
    if (event.reason or "") != (signature.reason or ""):
        problems.append("the reason differs from the one in the audit event")
    # Decisions carry the digest they covered; alias moves, the version's recorded one.
    if "content_digest" in after:
        digest = after["content_digest"]
    else:
        digest = signature.version.content_digest if signature.version is not None else None
    if digest != signature.content_digest:
        problems.append("the content digest differs from the one the audit event covers")
    if signature.alias_name and after.get("alias") != signature.alias_name:
        problems.append("the alias differs from the one in the audit event")
    linked = signature.review or signature.alias_assignment
    if (
        linked is not None
        and (linked.version_id if linked is signature.review else linked.decided_version_id)
        != signature.version_id
    ):
        problems.append("it is linked to a decision on another version")
    return problems


def _assess(signatures: list[Signature]) -> list[Signature]:
    """Set ``standing``, ``problems`` and ``verifies`` on each signature: one query for all
    their audit events."""
    local = [s.audit_seq for s in signatures if s.imported_batch_id is None]
    by_seq = {(None, e.seq): e for e in AuditEvent.objects.filter(seq__in=local)} if local else {}
    imported = [(s.imported_batch_id, s.audit_seq) for s in signatures if s.imported_batch_id]
    if imported and _imported_events:
        by_seq |= _imported_events[0](imported)
    for s in signatures:
        if s.review is not None and s.review.discarded_at is not None:
            s.standing = WITHDRAWN
        elif s.alias_assignment_id is not None and s.superseded:
            s.standing = SUPERSEDED
        else:
            s.standing = VALID
        s.standing_label = STANDING_LABELS[s.standing]
        s.problems = signature_problems(s, by_seq.get((s.imported_batch_id, s.audit_seq)))
        s.verifies = not s.problems
    return signatures


def version_signatures(version: ModelVersion) -> list[Signature]:
    """The signatures given on ``version``, oldest first, with their standing and whether each
    verifies: two queries. The caller has checked that the user may view the version."""
    return _assess(list(_signatures().filter(version=version)))


def signatures_by_version(versions: Iterable[ModelVersion]) -> dict[int, list[Signature]]:
    """``version_signatures`` for many versions at once (lists, exports): two queries."""
    ids = [v.pk for v in versions]
    found: dict[int, list[Signature]] = {pk: [] for pk in ids}
    if not ids:
        return found
    for s in _assess(list(_signatures().filter(version_id__in=ids))):
        found[s.version_id].append(s)
    return found


def all_signatures(*, batch_size: int = 500):
    """Every signature with its standing and verification, in batches (manage.py
    verify_signatures, check_invariants): two queries per batch."""
    last = 0
    while True:
        batch = list(_signatures().filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            return
        yield from _assess(batch)
        last = batch[-1].pk


@dataclass
class Decisions:
    """A version's decisions with their signatures (the review page, the version page, the
    signature sheet). Each review and alias move carries ``shown_signature`` (None when it was
    not signed: signatures were off, or it was made by an API token where the policy allows)."""

    signatures: list[Signature]
    reviews: list[Review]
    alias_moves: list[AliasAssignment]

    @property
    def unsigned(self) -> list:
        return [d for d in (*self.reviews, *self.alias_moves) if d.shown_signature is None]


def version_decisions(version: ModelVersion, *, reviews: Iterable[Review] | None = None):
    """``version``'s signatures, reviews, alias moves onto it and removals of an alias from it,
    each decision with its signature: four queries (three when the caller passes the reviews it
    has loaded, with their reviewers). The caller has checked that the user may view the
    version."""
    signatures = version_signatures(version)
    if reviews is None:
        reviews = Review.objects.filter(version=version).select_related("reviewer")
    reviews = sorted(reviews, key=lambda r: (r.created_at, r.pk))
    moves = list(
        AliasAssignment.objects.filter(
            Q(
                version=version,
                kind__in=[AliasAssignment.Kind.PROMOTE, AliasAssignment.Kind.ROLLBACK],
            )
            | Q(previous_version=version, kind=AliasAssignment.Kind.REMOVE)
        )
        .select_related("assigned_by")
        .order_by("assigned_at", "pk")
    )
    by_review = {s.review_id: s for s in signatures if s.review_id is not None}
    by_move = {s.alias_assignment_id: s for s in signatures if s.alias_assignment_id is not None}
    for r in reviews:
        r.shown_signature = by_review.get(r.pk)
    for m in moves:
        m.shown_signature = by_move.get(m.pk)
    return Decisions(signatures=signatures, reviews=reviews, alias_moves=moves)
