"""Reviews: submitting a version, withdrawing it, approving, rejecting, archiving, comments."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import expiry, gates, notify
from approvals.models import Alias, Comment, Review, Signature
from approvals.selectors import production_of
from approvals.services import signatures
from approvals.services.signatures import SignatureInput
from audit import chain
from core.errors import Conflict
from models_app import digest, summary
from models_app.access import Role, require
from models_app.models import ModelVersion
from models_app.services.contributors import contributor_ids

S = ModelVersion.Status


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


def version_submit(*, actor, version: ModelVersion) -> ModelVersion:
    """Send a draft to review: its files and metadata are frozen from here on."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.DRAFT:
            raise _refuse(locked, "submitted (only drafts can be)")
        now = timezone.now()
        content = digest.content_digest(locked)
        ModelVersion.objects.filter(pk=locked.pk).update(
            status=S.IN_REVIEW,
            submitted_by=actor,
            submitted_at=now,
            decided_at=None,
            content_digest=content,
        )
        summary.status_moved(locked.model_id, S.DRAFT, S.IN_REVIEW)
        chain.record(
            actor=actor,
            action="version.submitted",
            target=locked,
            model=locked.model,
            before={"status": S.DRAFT},
            after={"status": S.IN_REVIEW, "content_digest": content},
        )
        transaction.on_commit(lambda: notify.submitted(locked.pk))
    locked.refresh_from_db()
    return locked


def version_withdraw(*, actor, version: ModelVersion, reason: str = "") -> ModelVersion:
    """Back to draft, by its author or submitter while they hold the edit role (an editor whose
    grant was removed may no longer discard the reviews); reviews so far are discarded (and
    kept)."""
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "withdrawn (only versions in review can be)")
        if actor.pk not in (locked.created_by_id, locked.submitted_by_id):
            raise PermissionDenied("Only the version's author or submitter may withdraw it.")
        require(actor, version.model, Role.EDIT)
        discarded = Review.objects.filter(version=locked, discarded_at__isnull=True).update(
            discarded_at=timezone.now()
        )
        ModelVersion.objects.filter(pk=locked.pk).update(status=S.DRAFT)
        summary.status_moved(locked.model_id, S.IN_REVIEW, S.DRAFT)
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


def _gates_or_refuse(locked: ModelVersion, policy, roles: set[Role], override_reason: str):
    """The gate checklist with the files re-read, and the failing gates; refuses unless none
    fail or a reviewer holding manage gives an override reason."""
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
    return results, failed


def _create_review(**fields) -> Review:
    try:
        with transaction.atomic():
            return Review.objects.create(**fields)
    except IntegrityError:
        raise Conflict("You have already reviewed this version.") from None


def _record_approval(actor, locked: ModelVersion, review: Review, failed, signed=None) -> None:
    after = {"gates_failed": [r.key for r in failed], "content_digest": review.content_digest}
    if review.round:
        after["revalidation_round"] = review.round
    after.update(signatures.audit_fields(signed, via_token=review.via_token))
    event = chain.record(
        actor=actor, action="review.approved", target=locked, model=locked.model,
        after=after, reason=review.reason,
    )  # fmt: skip
    signatures.signature_record(
        signed, event=event, version=locked, content_digest=review.content_digest,
        reason=review.reason, review=review,
    )  # fmt: skip
    if failed:
        chain.record(
            actor=actor,
            action="review.gate_override",
            target=locked,
            model=locked.model,
            after={"gates": [r.as_dict() for r in failed]},
            reason=review.override_reason,
        )


def _approve_in_round(
    actor, locked: ModelVersion, roles: set[Role], *, seen: str, reason: str,
    override_reason: str, via_token: str, signed, round_: int = 0,
) -> tuple[Review, int, bool]:  # fmt: skip
    """The steps a first approval and a revalidating one share, inside the decision's
    transaction on the locked version: the gates re-checked with the files re-read (refused
    unless they pass or an allowed override is given), the review of round ``round_``
    recorded with its audit event and signature, then the round's approvals counted. Returns
    the review, that count and whether it reaches the policy's quorum. (A version in review
    has reviews of round 0 only: rounds 1+ are revalidations of an approved version, which
    never goes back to review.)"""
    policy = gates.policy_for(locked.model)
    results, failed = _gates_or_refuse(locked, policy, roles, override_reason)
    review = _create_review(
        version=locked,
        reviewer=actor,
        decision=Review.Decision.APPROVE,
        reason=reason,
        override_reason=override_reason if failed else "",
        gates=[r.as_dict() for r in results],
        content_digest=seen,
        round=round_,
        via_token=via_token,
    )
    _record_approval(actor, locked, review, failed, signed)
    approvals = Review.objects.filter(
        version=locked, round=round_, decision=Review.Decision.APPROVE, discarded_at__isnull=True
    ).count()
    return review, approvals, approvals >= policy.required_approvals


class StaleContent(Conflict):
    """The version's content is not what the reviewer saw (its digest differs)."""


def _check_reviewer(actor, version: ModelVersion, round_: int = 0) -> set[Role]:
    roles = require(actor, version.model, Role.REVIEW)
    if actor.pk in (version.created_by_id, version.submitted_by_id):
        raise PermissionDenied(
            "You registered or submitted this version; someone else must review it "
            "(separation of duties)."
        )
    if actor.pk in contributor_ids(version):
        raise PermissionDenied(
            "You changed this version's content (files, metadata or model card); a contributor "
            "may not review it (separation of duties)."
        )
    if Review.objects.filter(
        version=version, reviewer=actor, round=round_, discarded_at__isnull=True
    ).exists():
        raise Conflict(
            "You have already revalidated this version in this round."
            if round_
            else "You have already reviewed this version."
        )
    return roles


def _check_content(version: ModelVersion, seen: str | None) -> str:
    """The decision covers the content the reviewer saw: the digest they send must be the one
    recorded at submission, and the content must still hash to it. ``None`` is for code that
    decides on what it has just read itself (demo data, tests): the recorded digest, still
    checked against the content. Every page and API passes what the reviewer sent."""
    if seen is None:
        seen = version.content_digest
    seen = seen.strip()
    if not seen:
        raise ValidationError(
            {"content_digest": ["Give the content digest of the version you reviewed."]}
        )
    if seen != version.content_digest or digest.content_digest(version) != seen:
        raise StaleContent(
            f"Version {version.number} changed since you opened it (its content digest is no "
            "longer the one you reviewed). Reload it and review it again."
        )
    return seen


def _sign(
    actor, version: ModelVersion, signature, action: str, via_token: str, refusal: str,
    status: str = S.IN_REVIEW, next_round: bool = False,
):  # fmt: skip
    """Verify the decision's signature (before its transaction: a refused one must leave its
    records). Whoever may not decide is told so first, without being asked to sign: the
    decision's own transaction checks all of this again on the locked row."""
    policy = gates.policy_for(version.model)
    if signature is not None or policy.signatures_required:
        current = ModelVersion.objects.get(pk=version.pk)  # the caller's copy may be older
        current.model = version.model
        if current.status != status:
            raise _refuse(current, refusal)
        _check_reviewer(actor, current, current.review_round + 1 if next_round else 0)
    return signatures.signature_verify(
        actor=actor, signature=signature, action=action, policy=policy, target=version,
        model=version.model, via_token=via_token,
    )  # fmt: skip


def review_approve(
    *,
    actor,
    version: ModelVersion,
    content_digest: str | None = None,
    reason: str = "",
    override_reason: str = "",
    signature: SignatureInput | None = None,
    via_token: str = "",
) -> Review:
    """Approve the content whose digest the reviewer saw; when the approvals reach the policy's
    quorum the version becomes approved.

    Failing gates refuse the approval unless the reviewer also holds manage and writes an
    override reason, which is kept on the review (and so on the version) for good.

    Where the policy requires signatures the approval is signed (``signature``: password and
    meaning, approvals/services/signatures.py); ``via_token`` names the API token deciding
    alone, allowed only where the policy allows machine decisions.
    """
    reason, override_reason = reason.strip(), override_reason.strip()
    signed = _sign(
        actor, version, signature, Signature.Action.APPROVE, via_token,
        "approved (only versions in review can be)",
    )  # fmt: skip
    via_token = via_token if signed is None else ""
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "approved (only versions in review can be)")
        roles = _check_reviewer(actor, locked)
        seen = _check_content(locked, content_digest)
        review, approvals, quorum = _approve_in_round(
            actor, locked, roles, seen=seen, reason=reason, override_reason=override_reason,
            via_token=via_token, signed=signed,
        )  # fmt: skip
        if quorum:
            flipped = ModelVersion.objects.filter(pk=locked.pk, status=S.IN_REVIEW).update(
                status=S.APPROVED, decided_at=timezone.now()
            )
            if flipped:
                summary.status_moved(locked.model_id, S.IN_REVIEW, S.APPROVED)
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


def review_reject(
    *,
    actor,
    version: ModelVersion,
    reason: str,
    content_digest: str | None = None,
    signature: SignatureInput | None = None,
    via_token: str = "",
) -> Review:
    """Any one rejection rejects the version. A reason is required, and the digest of the
    content the reviewer saw; signed as review_approve is."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the version is rejected."]})
    signed = _sign(
        actor, version, signature, Signature.Action.REJECT, via_token,
        "rejected (only versions in review can be)",
    )  # fmt: skip
    via_token = via_token if signed is None else ""
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.IN_REVIEW:
            raise _refuse(locked, "rejected (only versions in review can be)")
        _check_reviewer(actor, locked)
        seen = _check_content(locked, content_digest)
        review = Review.objects.create(
            version=locked,
            reviewer=actor,
            decision=Review.Decision.REJECT,
            reason=reason,
            content_digest=seen,
            via_token=via_token,
        )
        ModelVersion.objects.filter(pk=locked.pk).update(
            status=S.REJECTED, decided_at=timezone.now()
        )
        summary.status_moved(locked.model_id, S.IN_REVIEW, S.REJECTED)
        event = chain.record(
            actor=actor,
            action="review.rejected",
            target=locked,
            model=locked.model,
            before={"status": S.IN_REVIEW},
            after={
                "status": S.REJECTED,
                "content_digest": seen,
                **signatures.audit_fields(signed, via_token=via_token),
            },
            reason=reason,
        )
        signatures.signature_record(
            signed, event=event, version=locked, content_digest=seen, reason=reason, review=review
        )
        transaction.on_commit(lambda: notify.decided(review.pk))
    return review


def review_revalidate(
    *,
    actor,
    version: ModelVersion,
    decision: str,
    content_digest: str | None = None,
    reason: str = "",
    override_reason: str = "",
    signature: SignatureInput | None = None,
    via_token: str = "",
) -> Review:
    """A new review round on an approved version, on the same content (no new upload): the
    reviewer sends the digest they saw, which must still be the version's. Signed as a first
    approval or rejection is, where the policy requires signatures.

    Approving counts towards the policy's quorum in this round, under the rules of a first
    approval (separation of duties, gates re-checked with the files re-read, overrides); when
    the quorum is reached the approval is renewed (``decided_at``, the round is closed, the
    "revalidation due" marker cleared) and ``version.revalidated`` is recorded. Rejecting
    (a reason is required) rejects the version at once (``version.revalidation_rejected``);
    its aliases are not moved, the alias panel flags them."""
    reason, override_reason = (reason or "").strip(), (override_reason or "").strip()
    if decision not in Review.Decision.values:
        raise ValidationError({"decision": ["Approve or reject."]})
    if decision == Review.Decision.REJECT and not reason:
        raise ValidationError({"reason": ["Say why the version is rejected."]})
    action = (
        Signature.Action.APPROVE if decision == Review.Decision.APPROVE else Signature.Action.REJECT
    )
    refusal = "revalidated (only approved versions can be)"
    signed = _sign(
        actor, version, signature, action, via_token, refusal, S.APPROVED, next_round=True
    )
    via_token = via_token if signed is None else ""
    with transaction.atomic():
        locked = _lock(version)
        if locked.status != S.APPROVED:
            raise _refuse(locked, "revalidated (only approved versions can be)")
        round_ = locked.review_round + 1
        roles = _check_reviewer(actor, locked, round_)
        seen = _check_content(locked, content_digest)
        now = timezone.now()
        if decision == Review.Decision.REJECT:
            review = _create_review(
                version=locked, reviewer=actor, decision=decision, reason=reason,
                content_digest=seen, round=round_, via_token=via_token,
            )  # fmt: skip
            ModelVersion.objects.filter(pk=locked.pk, status=S.APPROVED).update(
                status=S.REJECTED, decided_at=now, review_round=round_
            )
            summary.status_moved(locked.model_id, S.APPROVED, S.REJECTED)
            event = chain.record(
                actor=actor,
                action="version.revalidation_rejected",
                target=locked,
                model=locked.model,
                before={"status": S.APPROVED, "approved_at": locked.decided_at},
                after={
                    "status": S.REJECTED,
                    "content_digest": seen,
                    "round": round_,
                    **signatures.audit_fields(signed, via_token=via_token),
                },
                reason=reason,
            )
            signatures.signature_record(
                signed, event=event, version=locked, content_digest=seen, reason=reason,
                review=review,
            )  # fmt: skip
            transaction.on_commit(lambda: notify.decided(review.pk))
            return review
        review, approvals, quorum = _approve_in_round(
            actor, locked, roles, seen=seen, reason=reason, override_reason=override_reason,
            via_token=via_token, signed=signed, round_=round_,
        )  # fmt: skip
        if quorum:
            renewed = ModelVersion.objects.filter(
                pk=locked.pk, status=S.APPROVED, review_round=locked.review_round
            ).update(decided_at=now, review_round=round_, revalidation_marked_at=None)
            if renewed:
                chain.record(
                    actor=actor,
                    action="version.revalidated",
                    target=locked,
                    model=locked.model,
                    before={"approved_at": locked.decided_at},
                    after={"approved_at": now, "round": round_, "approvals": approvals},
                )
        transaction.on_commit(lambda: notify.decided(review.pk))
    return review


def version_mark_revalidation_due(*, version: ModelVersion, now=None) -> bool:
    """Record ``version.revalidation_due`` (and so its webhooks) for the version's current
    approval, once, as the registry's scheduled work (``chain.SCHEDULED``): the marker is set
    by a conditional update in the same transaction, so a second run, or a concurrent one,
    records nothing. False when the version is not due or was marked for this approval
    already."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(version)
        valid_days = expiry.valid_days_of(locked.model)
        state = expiry.expiry_of(locked, valid_days, now)
        if not state.due or locked.revalidation_marked_at is not None:
            return False
        marked = ModelVersion.objects.filter(
            pk=locked.pk,
            status=S.APPROVED,
            decided_at=locked.decided_at,
            revalidation_marked_at__isnull=True,
        ).update(revalidation_marked_at=now)
        if not marked:
            return False
        chain.record(
            actor=chain.SCHEDULED,
            action="version.revalidation_due",
            target=locked,
            model=locked.model,
            after={
                "approved_at": locked.decided_at,
                "approval_expires_at": state.expires_at,
                "approval_valid_days": valid_days,
                "content_digest": locked.content_digest,
            },
        )
    return True


def revalidation_mark_due(*, now=None) -> int:
    """``version_mark_revalidation_due`` for every approved version due and not yet marked
    for its current approval; how many were marked. Run by ``manage.py mark_revalidation_due``
    (cron) and by the webhook worker."""
    now = now or timezone.now()
    unmarked = ModelVersion.objects.filter(revalidation_marked_at__isnull=True)
    return sum(
        version_mark_revalidation_due(version=v, now=now) for v in expiry.due_among(unmarked, now)
    )


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
        summary.status_moved(locked.model_id, locked.status, S.ARCHIVED)
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
