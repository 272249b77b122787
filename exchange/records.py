"""The registry as plain JSON records, keyed by names rather than database ids: users by
username, teams by name, models by name, versions by (model, number), datasets by name.

The same records are written to an export archive and compared by the round-trip test
(``canonical.py``), so what the archive holds is exactly what "the registry" means here.
"""

from django.db.models import Prefetch

from approvals.models import Alias, AliasAssignment, Comment, Review, ReviewPolicy, Signature
from audit.models import AuditEvent
from models_app.access import Role
from models_app.models import (
    Artifact,
    CardSection,
    CardTemplate,
    Dataset,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
    VersionDataset,
    VersionParent,
)

CARD_FIELDS = [*CardSection.values, "notes"]
AUDIT_FIELDS = [
    "seq", "created_at", "actor_id", "actor_username", "action", "model_id", "target_type",
    "target_id", "target_label", "before", "after", "reason", "ip_address", "prev_hash", "hash",
]  # fmt: skip
ROLE_OF_PERM = {role.perm: role.value for role in Role}


def when(value) -> str | None:
    return value.isoformat() if value is not None else None


def username(user) -> str | None:
    return user.get_username() if user is not None else None


class Names:
    """The users and teams the records mention, so the archive can carry them too."""

    def __init__(self):
        self.users: set[str] = set()
        self.groups: set[str] = set()

    def user(self, user) -> str | None:
        name = username(user)
        if name is not None:
            self.users.add(name)
        return name

    def group(self, group) -> str | None:
        if group is None:
            return None
        self.groups.add(group.name)
        return group.name


# ---------------------------------------------------------------------------------------------
# Models


def models_for_export(names: list[str] | None = None):
    qs = RegisteredModel.objects.select_related("owner", "team").prefetch_related(
        "tags",
        "metric_specs",
        Prefetch("aliases", Alias.objects.select_related("version").order_by("name")),
        Prefetch(
            "alias_history",
            AliasAssignment.objects.select_related("assigned_by", "signature__signer").order_by(
                "assigned_at", "pk"
            ),
        ),
    )
    return qs.order_by("name_key") if names is None else qs.filter(name__in=names)


def _grants(model: RegisteredModel, names: Names) -> dict:
    users: dict[str, list[str]] = {}
    for row in RegisteredModelUserObjectPermission.objects.filter(
        content_object=model
    ).select_related("user", "permission"):
        role = ROLE_OF_PERM.get(row.permission.codename)
        if role:
            users.setdefault(names.user(row.user), []).append(role)
    groups: dict[str, list[str]] = {}
    for row in RegisteredModelGroupObjectPermission.objects.filter(
        content_object=model
    ).select_related("group", "permission"):
        role = ROLE_OF_PERM.get(row.permission.codename)
        if role:
            groups.setdefault(names.group(row.group), []).append(role)
    return {
        "users": {k: sorted(v) for k, v in sorted(users.items())},
        "groups": {k: sorted(v) for k, v in sorted(groups.items())},
    }


def _policy(model: RegisteredModel) -> dict | None:
    policy = ReviewPolicy.objects.filter(model=model).prefetch_related("gates").first()
    if policy is None:
        return None
    return {
        "required_approvals": policy.required_approvals,
        "require_description": policy.require_description,
        "require_training_dataset": policy.require_training_dataset,
        "require_metrics": policy.require_metrics,
        "verify_artifacts": policy.verify_artifacts,
        "approval_valid_days": policy.approval_valid_days,
        "updated_at": when(policy.updated_at),
        "gates": [
            {
                "metric": g.metric,
                "split": g.split,
                "threshold": g.threshold,
                "max_regression": g.max_regression,
            }
            for g in policy.gates.all()
        ],
    }


def model_record(model: RegisteredModel, names: Names) -> dict:
    template = CardTemplate.objects.filter(model=model).first()
    return {
        "export_id": model.pk,
        "name": model.name,
        "description": model.description,
        "owner": names.user(model.owner),
        "team": names.group(model.team),
        "task": model.task,
        "visibility": model.visibility,
        "next_version_number": model.next_version_number,
        "created_at": when(model.created_at),
        "updated_at": when(model.updated_at),
        "tags": {t.key: t.value for t in model.tags.all()},
        "metric_directions": {s.name: s.higher_is_better for s in model.metric_specs.all()},
        "policy": _policy(model),
        "card_template": (
            {
                "required_sections": template.required_sections,
                "updated_at": when(template.updated_at),
            }
            if template
            else None
        ),
        "grants": _grants(model, names),
        "aliases": [
            {
                "name": a.name,
                "version": a.version.number,
                "protected": a.protected,
                "updated_at": when(a.updated_at),
            }
            for a in model.aliases.all()
        ],
        "alias_history": [
            {
                "alias_name": h.alias_name,
                "version_number": h.version_number,
                "previous_number": h.previous_number,
                "kind": h.kind,
                "note": h.note,
                "assigned_by": names.user(h.assigned_by),
                "assigned_at": when(h.assigned_at),
                "signature": signature_record(_signature_of(h), names),
            }
            for h in model.alias_history.all()
        ],
    }


# ---------------------------------------------------------------------------------------------
# Versions


def versions_for_export(model: RegisteredModel):
    return (
        ModelVersion.objects.filter(model=model)
        .select_related("model", "created_by", "submitted_by")
        .prefetch_related(
            "metrics",
            "params",
            "tags",
            "dependencies",
            Prefetch("dataset_links", VersionDataset.objects.select_related("dataset")),
            Prefetch(
                "parent_links",
                VersionParent.objects.select_related("parent__model").order_by("pk"),
            ),
            Prefetch("artifacts", Artifact.objects.order_by("path")),
            Prefetch(
                "reviews",
                Review.objects.select_related("reviewer", "signature__signer").order_by(
                    "created_at", "pk"
                ),
            ),
            Prefetch(
                "comments",
                Comment.objects.select_related("author").order_by("created_at", "pk"),
            ),
        )
        .order_by("number")
    )


def card_record(version: ModelVersion, names: Names) -> dict | None:
    card = ModelCard.objects.filter(version=version).select_related("updated_by").first()
    if card is None:
        return None
    return {key: getattr(card, key) for key in CARD_FIELDS} | {
        "updated_by": names.user(card.updated_by),
        "updated_at": when(card.updated_at),
    }


def version_record(version: ModelVersion, names: Names, member_of=None) -> dict:
    """``member_of(artifact)``: the archive member holding the artifact's bytes."""
    comments = list(version.comments.all())
    local_ids = {c.pk: i for i, c in enumerate(comments, start=1)}
    return {
        "model": version.model.name,
        "number": version.number,
        "status": version.status,
        "description": version.description,
        "created_by": names.user(version.created_by),
        "created_at": when(version.created_at),
        "updated_at": when(version.updated_at),
        "framework": version.framework,
        "framework_version": version.framework_version,
        "python_version": version.python_version,
        "requirements": version.requirements,
        "signature": version.signature,
        "submitted_by": names.user(version.submitted_by),
        "submitted_at": when(version.submitted_at),
        "decided_at": when(version.decided_at),
        "review_round": version.review_round,
        "revalidation_marked_at": when(version.revalidation_marked_at),
        "content_digest": version.content_digest,
        "source_run": version.source_run,
        "source_model": version.source_model,
        "source_repository": version.source_repository,
        "source_commit": version.source_commit,
        "metrics": [
            {"name": m.name, "value": m.value, "split": m.split}
            | ({"step": m.step} if m.step is not None else {})  # from an MLflow run
            for m in sorted(version.metrics.all(), key=lambda m: (m.name, m.split))
        ],
        "params": {p.key: p.value for p in version.params.all()},
        "tags": {t.key: t.value for t in version.tags.all()},
        "dependencies": [
            {"name": d.name, "specifier": d.specifier} for d in version.dependencies.all()
        ],
        "datasets": sorted(
            (
                {"name": link.dataset.name, "role": link.role}
                for link in version.dataset_links.all()
            ),
            key=lambda d: (d["name"], d["role"]),
        ),
        # A deleted parent goes out as the link kept it, marked deleted (models_app.models
        # .VersionParent): the import recreates the link without a key.
        "parents": sorted(
            (
                {
                    "model": link.parent.model.name,
                    "version": link.parent.number,
                    "relation": link.relation,
                }
                if link.parent is not None
                else {
                    "model": link.parent_model_name,
                    "version": link.parent_number,
                    "relation": link.relation,
                    "deleted": True,
                }
                for link in version.parent_links.all()
            ),
            key=lambda p: (p["model"], p["version"]),
        ),
        "artifacts": [
            {
                "path": a.path,
                "size": a.size,
                "sha256": a.sha256,
                "content_type": a.content_type,
                "created_at": when(a.created_at),
                "format": a.format,
                "inspection": a.inspection,
                "findings": a.findings,
                "dangerous": a.dangerous,
            }
            | ({"member": member_of(a)} if member_of else {})
            for a in version.artifacts.all()
        ],
        "card": card_record(version, names),
        "reviews": [
            {
                "reviewer": names.user(r.reviewer),
                "decision": r.decision,
                "reason": r.reason,
                "override_reason": r.override_reason,
                "gates": r.gates,
                "round": r.round,
                "created_at": when(r.created_at),
                "discarded_at": when(r.discarded_at),
                "content_digest": r.content_digest,
                "signature": signature_record(_signature_of(r), names),
            }
            for r in version.reviews.all()
        ],
        "comments": [
            {
                "id": local_ids[c.pk],
                "parent": local_ids.get(c.parent_id),
                "author": names.user(c.author),
                "metric": c.metric,
                "body": c.body,
                "created_at": when(c.created_at),
            }
            for c in comments
        ],
    }


def _signature_of(decision):
    """The signature of a review or alias move (reverse one-to-one), or None."""
    try:
        return decision.signature
    except Signature.DoesNotExist:
        return None


def signature_record(signature: Signature | None, names: Names) -> dict | None:
    """An electronic signature as signed: restored verbatim by an import, when the version's
    content digest and the audit history in the archive still vouch for it."""
    if signature is None:
        return None
    return {
        "action": signature.action,
        "model_name": signature.model_name,
        "version_number": signature.version_number,
        "alias_name": signature.alias_name,
        "signer": names.user(signature.signer),
        "signer_username": signature.signer_username,
        "printed_name": signature.printed_name,
        "signed_at": when(signature.signed_at),
        "meaning": signature.meaning,
        "reason": signature.reason,
        "content_digest": signature.content_digest,
        "audit_seq": signature.audit_seq,
        "audit_hash": signature.audit_hash,
    }


# ---------------------------------------------------------------------------------------------
# Datasets, people, audit


def dataset_record(dataset: Dataset, names: Names) -> dict:
    return {
        "name": dataset.name,
        "uri": dataset.uri,
        "digest": dataset.digest,
        "row_count": dataset.row_count,
        "description": dataset.description,
        "created_by": names.user(dataset.created_by),
        "team": names.group(dataset.team),
        "created_at": when(dataset.created_at),
    }


def user_record(user) -> dict:
    # Never passwords, staff or superuser flags: an archive must not hand out access.
    return {
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
    }


def audit_record(event) -> dict:
    """An audit event with every field its hash covers (AuditEvent or ImportedAuditEvent)."""
    record = {name: getattr(event, name) for name in AUDIT_FIELDS}
    record["created_at"] = when(event.created_at)
    return record


def audit_events(model_ids: list[int] | None):
    events = AuditEvent.objects.order_by("seq")
    if model_ids is not None:
        events = events.filter(model_id__in=model_ids)
    return events
