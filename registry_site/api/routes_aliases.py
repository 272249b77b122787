"""Aliases: list, read (now or at a moment), set/promote, remove, roll back, history, and
``resolve``: everything a deployment tool needs to fetch and trust what an alias points at."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Query, Router
from ninja.responses import Status

from approvals import selectors, services
from approvals.models import Alias, AliasAssignment, Review
from core.rules import MODEL_ALIAS, MODEL_PROMOTE, MODEL_VIEW
from models_app.models import ModelVersion

from . import present
from .helpers import deciding_token, model_for, paginate, requires, signature_of
from .schemas import (
    ERRORS,
    AliasDeleteIn,
    AliasHistoryPage,
    AliasListOut,
    AliasOut,
    AliasSetIn,
    PageQuery,
    ResolveOut,
    RollbackIn,
)

router = Router(tags=["aliases"])
AliasPath = "/{name}/aliases/{alias}"


def _alias_out(alias: Alias) -> dict:
    return {
        "alias": alias.name,
        "version": alias.version.number,
        "status": alias.version.status,
        "protected": alias.protected,
        "updated_at": alias.updated_at,
    }


def _parse_at(raw: str) -> datetime:
    """ISO-8601; without an offset it means UTC."""
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(
            {"at": ["Give an ISO-8601 date and time, e.g. 2026-03-01T14:00:00Z."]}
        ) from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.UTC)
    return when


@router.get("/{name}/aliases", response={200: AliasListOut, **ERRORS}, url_name="aliases")
@requires(MODEL_VIEW)
def list_aliases(request: HttpRequest, name: str, paging: Query[PageQuery]):
    """View role. Protected aliases (production, staging) first."""
    model = model_for(request)
    return paginate(
        request,
        Alias.objects.filter(model=model).select_related("version"),
        limit=paging.limit,
        page=paging.page,
        serialize=lambda rows: (_alias_out(a) for a in rows),
    )


@router.get(AliasPath, response={200: AliasOut, **ERRORS}, url_name="alias")
@requires(MODEL_VIEW)
def get_alias(
    request: HttpRequest,
    name: str,
    alias: str,
    at: str = Query("", max_length=40, description="ISO-8601 moment"),
):
    """View role. With ``?at=<ISO-8601>``: the version the alias pointed at at that moment
    (404 if it pointed at none)."""
    model = model_for(request)
    if at:
        when = _parse_at(at)
        version = selectors.alias_at(model, alias, when)
        if version is None:
            raise Http404(f"{alias} pointed at no version at {when.isoformat()}.")
        entry = (
            AliasAssignment.objects.filter(model=model, alias_name=alias, assigned_at__lte=when)
            .values_list("assigned_at", flat=True)
            .first()
        )
        return {
            "alias": alias,
            "version": version.number,
            "status": version.status,
            "protected": alias in Alias.PROTECTED_NAMES,
            "updated_at": entry,
        }
    found = Alias.objects.filter(model=model, name=alias).select_related("version").first()
    if found is None:
        raise Http404(f"{model.name} has no alias {alias}.")
    return _alias_out(found)


@router.put(AliasPath, response={200: AliasOut, **ERRORS}, url_name="alias")
@requires(MODEL_ALIAS)
def set_alias(request: HttpRequest, name: str, alias: str, payload: AliasSetIn):
    """Edit role for ordinary aliases; production and staging need the promote role and an
    approved version (403 / 409 otherwise), and a signature (password and meaning) where the
    policy requires signatures."""
    model = model_for(request)
    version = ModelVersion.objects.filter(model=model, number=payload.version).first()
    if version is None:
        raise ValidationError({"version": [f"{model.name} has no version {payload.version}."]})
    services.alias_set(
        actor=request.user, model=model, name=alias, version=version, note=payload.note,
        signature=signature_of(request, payload), via_token=deciding_token(request),
    )  # fmt: skip
    return _alias_out(
        Alias.objects.select_related("version").get(model=model, name=alias.strip().lower())
    )


@router.delete(AliasPath, response={204: None, **ERRORS}, url_name="alias")
@requires(MODEL_ALIAS)
def delete_alias(
    request: HttpRequest,
    name: str,
    alias: str,
    note: str = Query("", max_length=1000),
    payload: AliasDeleteIn | None = None,
):
    """Edit role (promote for protected aliases). The history stays. Removing production or
    staging is signed where the policy requires signatures: ``password`` and ``meaning`` (one
    of the policy's promotion meanings) in a JSON body; no body otherwise."""
    model = model_for(request)
    services.alias_delete(
        actor=request.user, model=model, name=alias, note=note,
        signature=signature_of(request, payload) if payload is not None else None,
        via_token=deciding_token(request),
    )  # fmt: skip
    return Status(204, None)


@router.post(AliasPath + "/rollback", response={200: AliasOut, **ERRORS}, url_name="alias_rollback")
@requires(MODEL_PROMOTE)
def rollback_alias(request: HttpRequest, name: str, alias: str, payload: RollbackIn):
    """Promote role for protected aliases (edit for others): back to the version that held the
    alias before, with a reason; signed where the policy requires signatures."""
    model = model_for(request)
    entry = services.alias_rollback(
        actor=request.user, model=model, name=alias, reason=payload.reason,
        signature=signature_of(request, payload), via_token=deciding_token(request),
    )  # fmt: skip
    return _alias_out(
        Alias.objects.select_related("version").get(model=model, name=entry.alias_name)
    )


def _history_out(entry: AliasAssignment) -> dict:
    return {
        "alias": entry.alias_name,
        "kind": entry.kind,
        "version": entry.version_number,
        "previous_version": entry.previous_number,
        "note": entry.note,
        "assigned_by": entry.assigned_by.get_username(),
        "assigned_at": entry.assigned_at,
        "via_token": entry.via_token or None,
    }


@router.get(
    AliasPath + "/history", response={200: AliasHistoryPage, **ERRORS}, url_name="alias_history"
)
@requires(MODEL_VIEW)
def alias_history(request: HttpRequest, name: str, alias: str, paging: Query[PageQuery]):
    """View role. Every move, rollback and removal, newest first."""
    model = model_for(request)
    entries = AliasAssignment.objects.filter(model=model, alias_name=alias).select_related(
        "assigned_by"
    )
    return paginate(
        request,
        entries,
        limit=paging.limit,
        page=paging.page,
        serialize=lambda rows: (_history_out(e) for e in rows),
    )


@router.get(AliasPath + "/resolve", response={200: ResolveOut, **ERRORS}, url_name="alias_resolve")
@requires(MODEL_VIEW)
def resolve_alias(request: HttpRequest, name: str, alias: str):
    """View role. The version the alias points at, its approval record (reviews, reasons,
    gate overrides, whether the approval is due for revalidation, electronic signatures with
    their meaning and standing) and each file with size, SHA-256 and a download URL (on S3 a
    short-lived presigned one). Check each download against its sha256."""
    model = model_for(request)
    found = Alias.objects.filter(model=model, name=alias).select_related("version").first()
    if found is None:
        raise Http404(f"{model.name} has no alias {alias}.")
    version = found.version
    version.model = model
    detail = present.version_detail(request, version, file_urls=present.presigned_or_api_url)
    reviews = (
        Review.objects.filter(version=version).select_related("reviewer").order_by("created_at")
    )
    reviews = [present.review_out(r) for r in reviews]
    return {
        "model": model.name,
        "alias": found.name,
        "version": detail,
        "approval": {
            "status": version.status,
            "content_digest": version.content_digest,
            "submitted_by": detail["submitted_by"],
            "submitted_at": version.submitted_at,
            "decided_at": version.decided_at,
            "revalidation_due": detail["revalidation_due"],
            "approval_expires_at": detail["approval_expires_at"],
            "reviews": reviews,
            "overrides": [r for r in reviews if r["override_reason"]],
            "signatures": detail["signatures"],
        },
        "files": detail["files"],
    }
