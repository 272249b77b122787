"""The review workflow on a version: submit, withdraw, approve, reject, archive, comments.

Each action is one call of approvals.services, which checks roles and states itself (403, 409;
a failing gate is a 409 listing the gates)."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from approvals import services
from approvals.models import Comment, Review
from core.rules import MODEL_EDIT, MODEL_MANAGE, MODEL_REVIEW, MODEL_VIEW

from . import present
from .helpers import deciding_token, paginate, requires, signature_of, version_for
from .idempotency import KeyHeader, idempotent
from .routes_versions import VersionPath
from .schemas import (
    ERRORS,
    ApprovalOut,
    ApproveIn,
    CommentIn,
    CommentOut,
    CommentPage,
    PageQuery,
    ReasonIn,
    RejectIn,
    VersionOut,
)

router = Router(tags=["reviews"])


def _answer(request: HttpRequest, version) -> dict:
    return present.version_detail(request, version)  # reloaded: the state has changed


@router.post(VersionPath + "/submit", response={200: VersionOut, **ERRORS}, url_name="submit")
@requires(MODEL_EDIT)
def submit_version(request: HttpRequest, name: str, number: int):
    """Edit role, drafts only. Freezes files and metadata and asks for review."""
    version = version_for(request, number)
    services.version_submit(actor=request.user, version=version)
    return _answer(request, version)


@router.post(VersionPath + "/withdraw", response={200: VersionOut, **ERRORS}, url_name="withdraw")
@requires(MODEL_EDIT)
def withdraw_version(request: HttpRequest, name: str, number: int, payload: ReasonIn = None):
    """Edit role, and the version's author or submitter, while it is in review: back to draft."""
    version = version_for(request, number)
    reason = payload.reason if payload else ""
    services.version_withdraw(actor=request.user, version=version, reason=reason)
    return _answer(request, version)


@router.post(VersionPath + "/approve", response={200: ApprovalOut, **ERRORS}, url_name="approve")
@requires(MODEL_REVIEW)
def approve_version(request: HttpRequest, name: str, number: int, payload: ApproveIn = None):
    """Review role; not the version's author, submitter or a contributor. Send the
    content_digest you reviewed: 409 if the version changed since. Failing gates: 409 with the
    gates, unless a reviewer who also manages the model gives an override reason. With
    ``"revalidation": true``: a revalidation round of an approved version (same content).
    Where the policy requires signatures, send your password and a meaning
    (docs/signatures.md)."""
    version = version_for(request, number)
    payload = payload or ApproveIn()
    if payload.revalidation:
        review = services.review_revalidate(
            actor=request.user,
            version=version,
            decision=Review.Decision.APPROVE,
            content_digest=payload.content_digest,
            reason=payload.reason,
            override_reason=payload.override_reason,
            signature=signature_of(request, payload),
            via_token=deciding_token(request),
        )
        return {"review": present.review_out(review), "version": _answer(request, version)}
    review = services.review_approve(
        actor=request.user,
        version=version,
        content_digest=payload.content_digest,
        reason=payload.reason,
        override_reason=payload.override_reason,
        signature=signature_of(request, payload),
        via_token=deciding_token(request),
    )
    return {"review": present.review_out(review), "version": _answer(request, version)}


@router.post(VersionPath + "/reject", response={200: ApprovalOut, **ERRORS}, url_name="reject")
@requires(MODEL_REVIEW)
def reject_version(request: HttpRequest, name: str, number: int, payload: RejectIn):
    """Review role; a reason is required, and the content digest you reviewed; signed as an
    approval is. With ``"revalidation": true``: rejects an approved version in a revalidation
    round."""
    version = version_for(request, number)
    if payload.revalidation:
        review = services.review_revalidate(
            actor=request.user,
            version=version,
            decision=Review.Decision.REJECT,
            content_digest=payload.content_digest,
            reason=payload.reason,
            signature=signature_of(request, payload),
            via_token=deciding_token(request),
        )
    else:
        review = services.review_reject(
            actor=request.user,
            version=version,
            reason=payload.reason,
            content_digest=payload.content_digest,
            signature=signature_of(request, payload),
            via_token=deciding_token(request),
        )
    return {"review": present.review_out(review), "version": _answer(request, version)}


@router.post(VersionPath + "/archive", response={200: VersionOut, **ERRORS}, url_name="archive")
@requires(MODEL_MANAGE)
def archive_version(request: HttpRequest, name: str, number: int, payload: ReasonIn = None):
    """Manage role; approved or rejected versions that hold no protected alias."""
    version = version_for(request, number)
    reason = payload.reason if payload else ""
    services.version_archive(actor=request.user, version=version, reason=reason)
    return _answer(request, version)


# ---------------------------------------------------------------------------------------------
# Comments


def _comment_out(comment: Comment) -> dict:
    return {
        "id": comment.pk,
        "author": comment.author.get_username(),
        "body": comment.body,
        "metric": comment.metric,
        "parent": comment.parent_id,
        "created_at": comment.created_at,
    }


@router.get(VersionPath + "/comments", response={200: CommentPage, **ERRORS}, url_name="comments")
@requires(MODEL_VIEW)
def list_comments(request: HttpRequest, name: str, number: int, paging: Query[PageQuery]):
    """View role. Oldest first; replies name the comment they answer."""
    version = version_for(request, number)
    comments = Comment.objects.filter(version=version).select_related("author").order_by("pk")
    return paginate(
        request,
        comments,
        limit=paging.limit,
        page=paging.page,
        serialize=lambda rows: (_comment_out(c) for c in rows),
    )


@router.post(VersionPath + "/comments", response={201: CommentOut, **ERRORS}, url_name="comments")
@requires(MODEL_VIEW)
@decorate_view(idempotent)
def add_comment(
    request: HttpRequest,
    name: str,
    number: int,
    payload: CommentIn,
    idempotency_key: str | None = KeyHeader,
):
    """View role: anyone who may see the version may comment on it."""
    version = version_for(request, number)
    parent = None
    if payload.parent is not None:
        parent = Comment.objects.filter(version=version, pk=payload.parent).first()
        if parent is None:
            raise ValidationError({"parent": ["No such comment on this version."]})
    comment = services.comment_add(
        actor=request.user, version=version, body=payload.body, metric=payload.metric,
        parent=parent,
    )  # fmt: skip
    return Status(201, _comment_out(comment))
