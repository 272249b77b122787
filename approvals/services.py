"""The review workflow, aliases and comments: every transition one function, one transaction.

The state machine: draft → in_review → approved | rejected → archived; in_review → draft by
withdrawal. Each transition locks the version row, checks the state it expects, and answers a
move the machine does not allow with ``Conflict`` (HTTP 409). Role checks are repeated here (not
only in views) because the JSON and MLflow APIs call the same functions.
"""

import re
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from approvals import gates, notify
from approvals.models import Alias, AliasAssignment, Comment, MetricGate, Review, ReviewPolicy
from audit import chain
from core.errors import Conflict
from models_app.access import Role, models_with_role, require
from models_app.models import ModelVersion, RegisteredModel

S = ModelVersion.Status
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class GateFailure(Conflict):
    """Approval refused because gates fail and no (allowed) override was given."""

    def __init__(self, message: str, results: list[gates.GateResult]):
        super().__init__(message)
        self.results = results


def _lock(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)


def _refuse(version: ModelVersion, action: str) -> Conflict:
    return Conflict(
        f"Version {version.number} is {version.get_status_display().lower()}; it cannot be "
        f"{action}."
    )


def production_of(model: RegisteredModel) -> ModelVersion | None:
    alias = Alias.objects.filter(model=model, name="production").select_related("version").first()
    return alias.version if alias else None


# ---------------------------------------------------------------------------------------------
# Submission


def version_submit(*, actor, version: ModelVersion) -> ModelVersion:
    """Send a draft to review: its files and metadata are frozen from here on."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.DRAFT:
            raise _refuse(locked, "submitted (only drafts can be)")
        now = timezone.now()
        ModelVersion.objects.filter(pk=locked.pk).update(
            status=S.IN_REVIEW, submitted_by=actor, submitted_at=now, decided_at=None
        )
        chain.record(
            actor=actor,
            action="version.submitted",
            target=locked,
            model=locked.model,
            before={"status": S.DRAFT},
            after={"status": S.IN_REVIEW},
        )
        transaction.on_commit(lambda: notify.submitted(locked.pk))
    locked.refresh_from_db()
    return locked


def version_withdraw(*, actor, version: ModelVersion, reason: str = "") -> ModelVersion:
    """Back to draft, by its author or submitter; reviews so far are discarded (and kept)."""
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "withdrawn (only versions in review can be)")
        if actor.pk not in (locked.created_by_id, locked.submitted_by_id):
            raise PermissionDenied("Only the version's author or submitter may withdraw it.")
        discarded = Review.objects.filter(version=locked, discarded_at__isnull=True).update(
            discarded_at=timezone.now()
        )
        ModelVersion.objects.filter(pk=locked.pk).update(status=S.DRAFT)
        chain.record(
            actor=actor,
            action="version.withdrawn",
            target=locked,
            model=locked.model,
            before={"status": S.IN_REVIEW},
            after={"status": S.DRAFT, "reviews_discarded": discarded},
            reason=reason,
        )
    locked.refresh_from_db()
    return locked


# ---------------------------------------------------------------------------------------------
# Reviews


def _check_reviewer(actor, version: ModelVersion) -> set[Role]:
    roles = require(actor, version.model, Role.REVIEW)
    if actor.pk in (version.created_by_id, version.submitted_by_id):
        raise PermissionDenied(
            "You registered or submitted this version; someone else must review it "
            "(separation of duties)."
        )
    if Review.objects.filter(version=version, reviewer=actor, discarded_at__isnull=True).exists():
        raise Conflict("You have already reviewed this version.")
    return roles


def review_approve(
    *, actor, version: ModelVersion, reason: str = "", override_reason: str = ""
) -> Review:
    """Approve; when the approvals reach the policy's quorum the version becomes approved.

    Failing gates refuse the approval unless the reviewer also holds manage and writes an
    override reason, which is kept on the review (and so on the version) for good.
    """
    reason, override_reason = reason.strip(), override_reason.strip()
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "approved (only versions in review can be)")
        roles = _check_reviewer(actor, locked)
        policy = gates.policy_for(locked.model)
        results = gates.evaluate(
            locked, policy=policy, production=production_of(locked.model), verify_files=True
        )
        failed = gates.failing(results)
        if failed and not override_reason:
            raise GateFailure(
                "Gates fail: "
                + "; ".join(r.label for r in failed)
                + ". Fix the version, or (with the manage role) approve with an override reason.",
                results,
            )
        if failed and Role.MANAGE not in roles:
            raise GateFailure(
                "Only a reviewer who also holds the manage role may override failing gates.",
                results,
            )
        try:
            with transaction.atomic():
                review = Review.objects.create(
                    version=locked,
                    reviewer=actor,
                    decision=Review.Decision.APPROVE,
                    reason=reason,
                    override_reason=override_reason if failed else "",
                    gates=[r.as_dict() for r in results],
                )
        except IntegrityError:
            raise Conflict("You have already reviewed this version.") from None
        chain.record(
            actor=actor,
            action="review.approved",
            target=locked,
            model=locked.model,
            after={"gates_failed": [r.key for r in failed]},
            reason=reason,
        )
        if failed:
            chain.record(
                actor=actor,
                action="review.gate_override",
                target=locked,
                model=locked.model,
                after={"gates": [r.as_dict() for r in failed]},
                reason=override_reason,
            )
        approvals = Review.objects.filter(
            version=locked, decision=Review.Decision.APPROVE, discarded_at__isnull=True
        ).count()
        if approvals >= policy.required_approvals:
            flipped = ModelVersion.objects.filter(pk=locked.pk, status=S.IN_REVIEW).update(
                status=S.APPROVED, decided_at=timezone.now()
            )
            if flipped:
                chain.record(
                    actor=actor,
                    action="version.approved",
                    target=locked,
                    model=locked.model,
                    before={"status": S.IN_REVIEW},
                    after={"status": S.APPROVED, "approvals": approvals},
                )
                transaction.on_commit(lambda: notify.approved(locked.pk))
        transaction.on_commit(lambda: notify.decided(review.pk))
    return review


def review_reject(*, actor, version: ModelVersion, reason: str) -> Review:
    """Any one rejection rejects the version. A reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the version is rejected."]})
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "rejected (only versions in review can be)")
        _check_reviewer(actor, locked)
        review = Review.objects.create(
            version=locked, reviewer=actor, decision=Review.Decision.REJECT, reason=reason
        )
        ModelVersion.objects.filter(pk=locked.pk).update(
            status=S.REJECTED, decided_at=timezone.now()
        )
        chain.record(
            actor=actor,
            action="review.rejected",
            target=locked,
            model=locked.model,
            before={"status": S.IN_REVIEW},
            after={"status": S.REJECTED},
            reason=reason,
        )
        transaction.on_commit(lambda: notify.decided(review.pk))
    return review


def version_archive(*, actor, version: ModelVersion, reason: str = "") -> ModelVersion:
    require(actor, version.model, Role.MANAGE)
    with transaction.atomic():
        locked = _lock(version)
        if locked.status not in (S.APPROVED, S.REJECTED):
            raise _refuse(locked, "archived (only approved or rejected versions can be)")
        held = list(
            Alias.objects.filter(version=locked, protected=True).values_list("name", flat=True)
        )
        if held:
            raise Conflict(
                f"Version {locked.number} holds {', '.join(held)}; move the alias first."
            )
        ModelVersion.objects.filter(pk=locked.pk).update(status=S.ARCHIVED)
        chain.record(
            actor=actor,
            action="version.archived",
            target=locked,
            model=locked.model,
            before={"status": locked.status},
            after={"status": S.ARCHIVED},
            reason=reason,
        )
    locked.refresh_from_db()
    return locked


# ---------------------------------------------------------------------------------------------
# Comments


def comment_add(
    *, actor, version: ModelVersion, body: str, metric: str = "", parent: Comment | None = None
) -> Comment:
    require(actor, version.model, Role.VIEW)
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["Write something."]})
    if len(body) > 10000:
        raise ValidationError({"body": ["Comments are at most 10,000 characters."]})
    if metric and not version.metrics.filter(name=metric).exists():
        raise ValidationError({"metric": [f"Version {version.number} has no metric {metric!r}."]})
    if parent is not None and parent.version_id != version.pk:
        raise ValidationError({"parent": ["That comment belongs to another version."]})
    with transaction.atomic():
        comment = Comment.objects.create(
            version=version, author=actor, body=body, metric=metric, parent=parent
        )
        chain.record(
            actor=actor,
            action="comment.added",
            target=version,
            model=version.model,
            after={
                "comment": comment.pk,
                "metric": metric,
                "reply_to": parent.pk if parent else None,
            },
        )
        transaction.on_commit(lambda: notify.commented(comment.pk))
    return comment


# ---------------------------------------------------------------------------------------------
# Aliases


def _validate_alias_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not ALIAS_NAME.match(name):
        raise ValidationError(
            {"alias": ["Alias names are lower-case letters, digits, '-' and '_' (max 64)."]}
        )
    if name == "latest":
        raise ValidationError(
            {"alias": ["'latest' is reserved: it always means the newest version."]}
        )
    return name


def _move(*, actor, model, name, version, kind, note) -> AliasAssignment:
    alias = Alias.objects.select_for_update().filter(model=model, name=name).first()
    previous = alias.version if alias else None
    if alias is None:
        try:
            with transaction.atomic():
                alias = Alias.objects.create(
                    model=model, name=name, version=version, protected=name in Alias.PROTECTED_NAMES
                )
        except IntegrityError:
            raise Conflict(
                f"{name} was set by someone else at the same moment; try again."
            ) from None
    else:
        Alias.objects.filter(pk=alias.pk).update(version=version, updated_at=timezone.now())
    entry = AliasAssignment.objects.create(
        model=model,
        alias_name=name,
        version=version,
        version_number=version.number,
        previous_version=previous,
        previous_number=previous.number if previous else None,
        kind=kind,
        note=note,
        assigned_by=actor,
        assigned_at=timezone.now(),
    )
    chain.record(
        actor=actor,
        action="alias.rolled_back" if kind == AliasAssignment.Kind.ROLLBACK else "alias.moved",
        target=version,  # so the version's timeline shows when it became production
        model=model,
        before={"alias": name, "version": previous.number if previous else None},
        after={"alias": name, "version": version.number},
        reason=note,
    )
    return entry


def _check_alias_target(actor, model, name: str, version: ModelVersion) -> None:
    if version.model_id != model.pk:
        raise ValidationError({"version": ["That version belongs to another model."]})
    if name in Alias.PROTECTED_NAMES:
        require(actor, model, Role.PROMOTE)
        if version.status != S.APPROVED:
            raise Conflict(
                f"Only approved versions may become {name}; version {version.number} is "
                f"{version.get_status_display().lower()}."
            )
    else:
        require(actor, model, Role.EDIT)


def alias_set(*, actor, model: RegisteredModel, name: str, version: ModelVersion, note: str = ""):
    """Point an alias at a version. production/staging: promote role, approved versions only."""
    name = _validate_alias_name(name)
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        _check_alias_target(actor, model, name, locked)
        current = Alias.objects.filter(model=model, name=name).values_list("version_id", flat=True)
        if list(current) == [locked.pk]:
            raise Conflict(f"{name} already points at version {locked.number}.")
        entry = _move(
            actor=actor, model=model, name=name, version=locked,
            kind=AliasAssignment.Kind.PROMOTE, note=note.strip(),
        )  # fmt: skip
    notify.alias_moved_on_commit(entry.pk)
    return entry


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


def alias_rollback(*, actor, model: RegisteredModel, reason: str, name: str = "production"):
    """One click: return the alias to the version that held it before, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you roll back."]})
    require(actor, model, Role.PROMOTE if name in Alias.PROTECTED_NAMES else Role.EDIT)
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        target = rollback_target(model, name)
        if target is None:
            raise Conflict(f"{name} has no earlier version to roll back to.")
        target = ModelVersion.objects.select_for_update().get(pk=target.pk)
        if name in Alias.PROTECTED_NAMES and target.status != S.APPROVED:
            raise Conflict(
                f"The previous {name} version {target.number} is "
                f"{target.get_status_display().lower()}; promote an approved version instead."
            )
        entry = _move(
            actor=actor, model=model, name=name, version=target,
            kind=AliasAssignment.Kind.ROLLBACK, note=reason,
        )  # fmt: skip
    notify.alias_moved_on_commit(entry.pk)
    return entry


def alias_delete(*, actor, model: RegisteredModel, name: str, note: str = "") -> None:
    name = _validate_alias_name(name)
    require(actor, model, Role.PROMOTE if name in Alias.PROTECTED_NAMES else Role.EDIT)
    with transaction.atomic():
        alias = Alias.objects.select_for_update().filter(model=model, name=name).first()
        if alias is None:
            raise Conflict(f"{model.name} has no alias {name}.")
        AliasAssignment.objects.create(
            model=model, alias_name=name, version=None, previous_version=alias.version,
            previous_number=alias.version.number, kind=AliasAssignment.Kind.REMOVE,
            note=note, assigned_by=actor, assigned_at=timezone.now(),
        )  # fmt: skip
        chain.record(
            actor=actor, action="alias.removed", target=alias.version, model=model,
            before={"alias": name, "version": alias.version.number}, reason=note,
        )  # fmt: skip
        alias.delete()


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
# Policy


def policy_update(
    *,
    actor,
    model: RegisteredModel,
    required_approvals: int,
    require_description: bool = True,
    require_training_dataset: bool = True,
    require_metrics: bool = True,
    verify_artifacts: bool = True,
    metric_gates: list[dict] = (),
) -> ReviewPolicy:
    """Replace the model's review policy. Gates: [{metric, split, threshold, max_regression}]."""
    require(actor, model, Role.MANAGE)
    if not 1 <= required_approvals <= 10:
        raise ValidationError({"required_approvals": ["Between 1 and 10 approvals."]})
    seen = set()
    for i, g in enumerate(metric_gates):
        if not g.get("metric"):
            raise ValidationError({f"gates[{i}]": ["Name the metric."]})
        if g.get("threshold") is None and g.get("max_regression") is None:
            raise ValidationError({f"gates[{i}]": ["Give a threshold, a tolerance, or both."]})
        if g.get("max_regression") is not None and g["max_regression"] < 0:
            raise ValidationError({f"gates[{i}]": ["The tolerance cannot be negative."]})
        key = (g["metric"], g.get("split", ""))
        if key in seen:
            raise ValidationError({f"gates[{i}]": [f"{g['metric']} appears twice."]})
        seen.add(key)
    with transaction.atomic():
        policy, _ = ReviewPolicy.objects.select_for_update().get_or_create(model=model)
        before = _policy_state(policy)
        policy.required_approvals = required_approvals
        policy.require_description = require_description
        policy.require_training_dataset = require_training_dataset
        policy.require_metrics = require_metrics
        policy.verify_artifacts = verify_artifacts
        policy.save()
        policy.gates.all().delete()
        MetricGate.objects.bulk_create(
            MetricGate(
                policy=policy,
                metric=g["metric"],
                split=g.get("split", ""),
                threshold=g.get("threshold"),
                max_regression=g.get("max_regression"),
            )  # fmt: skip
            for g in metric_gates
        )
        chain.record(
            actor=actor, action="policy.updated", target=model, model=model,
            before=before, after=_policy_state(policy),
        )  # fmt: skip
    return policy


def _policy_state(policy: ReviewPolicy) -> dict:
    return {
        "required_approvals": policy.required_approvals,
        "require_description": policy.require_description,
        "require_training_dataset": policy.require_training_dataset,
        "require_metrics": policy.require_metrics,
        "verify_artifacts": policy.verify_artifacts,
        "gates": [
            {
                "metric": g.metric,
                "split": g.split,
                "threshold": g.threshold,
                "max_regression": g.max_regression,
            }  # fmt: skip
            for g in policy.gates.all()
        ]
        if policy.pk
        else [],
    }


def versions_waiting_for(user):
    """Versions in review that ``user`` may review and has not decided yet."""
    return (
        ModelVersion.objects.filter(
            status=S.IN_REVIEW, model__in=models_with_role(user, Role.REVIEW)
        )
        .exclude(Q(created_by=user) | Q(submitted_by=user))
        .exclude(reviews__reviewer=user, reviews__discarded_at__isnull=True)
    )
