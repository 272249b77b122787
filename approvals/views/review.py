"""A version's review page and the workflow actions on it (submit, withdraw, approve, reject,
comment, archive). Reads need the view role; each action needs its own role and is POST."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from approvals import expiry, gates, selectors, services
from approvals.models import Comment, Review
from approvals.views.signing import signature_from
from core.errors import Conflict
from models_app import diff
from models_app.access import Role, version_route
from models_app.models import MetricSpec, ModelVersion, VersionContributor, VersionDataset
from models_app.selectors import version_links

DETAIL_PREFETCH = (
    "metrics",
    "params",
    "dependencies",
    "tags",
    "artifacts",
    Prefetch("dataset_links", VersionDataset.objects.select_related("dataset")),
    Prefetch("contributors", VersionContributor.objects.select_related("user")),
)


def _versions_for_review(version: ModelVersion, against_number: int | None, user):
    """The candidate and what it is compared with: production, or the version asked for."""
    production = selectors.production_of(version.model)
    against = production
    if against_number is not None:
        against = ModelVersion.objects.filter(model=version.model, number=against_number).first()
        if against is None:
            raise Http404("No such version to compare with.")
    wanted = [version.pk] + ([against.pk] if against and against.pk != version.pk else [])
    loaded = {
        v.pk: v
        for v in ModelVersion.objects.filter(pk__in=wanted)
        .select_related("model", "created_by", "submitted_by")
        .prefetch_related(*DETAIL_PREFETCH, Prefetch("parent_links", version_links(user, "parent")))
    }
    candidate = loaded[version.pk]
    candidate.model = version.model  # keeps the roles the access helper attached
    other = loaded.get(against.pk) if against and against.pk != version.pk else None
    return candidate, other, production


@version_route(Role.VIEW, methods=["GET"])
def review_page(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """The candidate beside production (or ?against=N). View role to read; review to decide."""
    return _render_review(request, version)


def _render_review(request: HttpRequest, version: ModelVersion, status: int = 200):
    model = version.model
    raw_against = request.GET.get("against", "")
    against_number = int(raw_against) if raw_against.isdigit() else None
    candidate, against, production = _versions_for_review(version, against_number, request.user)
    specs = dict(MetricSpec.objects.filter(model=model).values_list("name", "higher_is_better"))
    columns = [against, candidate] if against else [candidate]
    metrics = diff.metric_table(
        [v.metric_map() for v in columns], lambda name: model.higher_is_better(name, specs)
    )
    policy = gates.policy_for(model)
    checklist = gates.evaluate(candidate, policy=policy, production=production)
    reviews = list(
        Review.objects.filter(version=candidate)
        .select_related("reviewer", "signature")
        .order_by("created_at")
    )
    selectors.version_decisions(candidate, reviews=reviews)  # each review's signature
    comments = list(
        Comment.objects.filter(version=candidate, parent__isnull=True)
        .select_related("author")
        .prefetch_related(Prefetch("replies", Comment.objects.select_related("author")))
    )
    roles = model.user_roles
    decided = any(
        r.reviewer_id == request.user.pk and r.discarded_at is None and r.round == 0
        for r in reviews
    )
    next_round = candidate.review_round + 1
    revalidated_now = any(
        r.reviewer_id == request.user.pk and r.discarded_at is None and r.round == next_round
        for r in reviews
    )
    contributors = [c.user for c in candidate.contributors.all()]
    is_author = request.user.pk in (candidate.created_by_id, candidate.submitted_by_id)
    is_contributor = any(u.pk == request.user.pk for u in contributors)
    context = {
        "nav_section": "models",
        "model": model,
        "version": candidate,
        "contributors": contributors,
        "against": against,
        "production": production,
        "columns": columns,
        "metrics": metrics,
        "sections": diff.compare_sections(columns),
        "checklist": checklist,
        "failing": gates.failing(checklist),
        "policy": policy,
        "reviews": reviews,
        "approvals": _approvals(reviews, 0),
        "approval_expiry": expiry.expiry_of(candidate, policy.approval_valid_days),
        "revalidation_round": next_round,
        "revalidation_approvals": _approvals(reviews, next_round),
        "can_revalidate": (
            Role.REVIEW in roles
            and candidate.status == ModelVersion.Status.APPROVED
            and not is_author
            and not is_contributor
            and not revalidated_now
        ),
        "comments": comments,
        "other_numbers": list(
            model.versions.exclude(pk=candidate.pk).values_list("number", flat=True)[:50]
        ),
        "can_review": (
            Role.REVIEW in roles
            and candidate.status == ModelVersion.Status.IN_REVIEW
            and not is_author
            and not is_contributor
            and not decided
        ),
        "review_blocker": _review_blocker(
            candidate,
            roles,
            is_author,
            is_contributor,
            revalidated_now if candidate.status == ModelVersion.Status.APPROVED else decided,
        ),
        "can_override": Role.MANAGE in roles,
        "can_withdraw": (
            candidate.status == ModelVersion.Status.IN_REVIEW and is_author and Role.EDIT in roles
        ),
        "can_submit": candidate.status == ModelVersion.Status.DRAFT and Role.EDIT in roles,
        "metric_names": sorted({m.name for m in candidate.metrics.all()}),
        "breadcrumbs": [
            ("Models", "/models/"),
            (model.name, model.get_absolute_url()),
            (f"v{candidate.number}", candidate.get_absolute_url()),
            ("Review", None),
        ],
    }
    return render(request, "approvals/review.html", context, status=status)


def _approvals(reviews: list[Review], round_: int) -> int:
    return sum(
        1
        for r in reviews
        if r.decision == Review.Decision.APPROVE and r.discarded_at is None and r.round == round_
    )


def _review_blocker(version, roles, is_author, is_contributor, decided) -> str:
    """Why the user may not decide (on an approved version: revalidate); "" when they may.
    ``decided``: they have reviewed it (in the current revalidation round, when approved)."""
    reviewable = (ModelVersion.Status.IN_REVIEW, ModelVersion.Status.APPROVED)
    if version.status not in reviewable:
        return f"This version is {version.get_status_display().lower()}: nothing to decide."
    if Role.REVIEW not in roles:
        return "You do not hold the review role on this model."
    if is_author:
        return "You registered or submitted this version; someone else must review it."
    if is_contributor:
        return (
            "You changed this version's content; a contributor may not review it "
            "(separation of duties)."
        )
    if decided:
        if version.status == ModelVersion.Status.APPROVED:
            return "You have revalidated this version in this round."
        return "You have reviewed this version."
    return ""


def _act(request, version, action, success: str):
    """Run one service call. Success redirects to the review page; a refusal renders the
    review page again with the reason and the refusal's status (409, 403 or 400)."""
    try:
        action()
    except (Conflict, PermissionDenied) as e:
        messages.error(request, str(e))
        return _refused(request, version, 409 if isinstance(e, Conflict) else 403)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
        return _refused(request, version, 400)
    messages.success(request, success)
    return redirect(f"{version.get_absolute_url()}review/")


def _refused(request, version, status: int) -> HttpResponse:
    version.refresh_from_db(
        fields=["status", "submitted_by", "submitted_at", "decided_at", "review_round"]
    )
    return _render_review(request, version, status)


@version_route(Role.EDIT, methods=["POST"])
def submit(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Edit role: send a draft to review."""
    return _act(
        request, version,
        lambda: services.version_submit(actor=request.user, version=version),
        f"Version {version.number} submitted for review; reviewers have been notified.",
    )  # fmt: skip


@version_route(Role.EDIT, methods=["POST"])
def withdraw(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Edit role, and the author or submitter: back to draft."""
    return _act(
        request, version,
        lambda: services.version_withdraw(
            actor=request.user, version=version, reason=request.POST.get("reason", "")
        ),
        f"Version {version.number} withdrawn to draft; its reviews were discarded.",
    )  # fmt: skip


def _revalidate(request: HttpRequest, version: ModelVersion, decision: str) -> HttpResponse:
    """The approve and reject forms of a revalidation round (``revalidation`` posted)."""
    verb = "revalidated" if decision == Review.Decision.APPROVE else "rejected"
    return _act(
        request, version,
        lambda: services.review_revalidate(
            actor=request.user, version=version, decision=decision,
            content_digest=request.POST.get("content_digest", ""),
            reason=request.POST.get("reason", ""),
            override_reason=request.POST.get("override_reason", ""),
            signature=signature_from(request),
        ),
        f"You {verb} version {version.number} (revalidation).",
    )  # fmt: skip


@version_route(Role.REVIEW, methods=["POST"])
def approve(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Review role, not the author or submitter; failing gates need manage and a reason.
    With ``revalidation`` posted: approves a revalidation round of an approved version."""
    if request.POST.get("revalidation"):
        return _revalidate(request, version, Review.Decision.APPROVE)
    return _act(
        request, version,
        lambda: services.review_approve(
            actor=request.user, version=version,
            content_digest=request.POST.get("content_digest", ""),
            reason=request.POST.get("reason", ""),
            override_reason=request.POST.get("override_reason", ""),
            signature=signature_from(request),
        ),
        f"You approved version {version.number}.",
    )  # fmt: skip


@version_route(Role.REVIEW, methods=["POST"])
def reject(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Review role; a reason is required. With ``revalidation`` posted: rejects an approved
    version in a revalidation round."""
    if request.POST.get("revalidation"):
        return _revalidate(request, version, Review.Decision.REJECT)
    return _act(
        request, version,
        lambda: services.review_reject(
            actor=request.user, version=version, reason=request.POST.get("reason", ""),
            content_digest=request.POST.get("content_digest", ""),
            signature=signature_from(request),
        ),
        f"You rejected version {version.number}.",
    )  # fmt: skip


@version_route(Role.VIEW, methods=["POST"])
def comment(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Anyone who may view the model may comment; may reply to a comment or name a metric."""
    parent = None
    raw_parent = request.POST.get("parent", "")
    if raw_parent:
        parent = (
            Comment.objects.filter(pk=raw_parent, version=version).first()
            if (raw_parent.isdigit())
            else None
        )
        if parent is None:
            messages.error(request, "The comment you replied to does not exist.")
            return _refused(request, version, 400)
    return _act(
        request, version,
        lambda: services.comment_add(
            actor=request.user, version=version, body=request.POST.get("body", ""),
            metric=request.POST.get("metric", ""), parent=parent,
        ),
        "Comment posted.",
    )  # fmt: skip


@version_route(Role.MANAGE, methods=["POST"])
def archive(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Manage role: retire an approved or rejected version (not one holding production)."""
    return _act(
        request, version,
        lambda: services.version_archive(
            actor=request.user, version=version, reason=request.POST.get("reason", "")
        ),
        f"Version {version.number} archived.",
    )  # fmt: skip
