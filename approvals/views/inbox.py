"""The reviewer's inbox: what waits for me, approvals due for revalidation, what I submitted,
what was decided lately."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals.models import Review
from approvals.selectors import revalidation_due_for, versions_waiting_for
from core.rules import LOGIN, access
from models_app.access import visible_versions
from models_app.models import ModelVersion

LIMIT = 50


@access(LOGIN)
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Any signed-in user; each list holds only versions of models they may view."""
    user = request.user
    waiting = versions_waiting_for(user).select_related("model", "created_by", "submitted_by")
    waiting = waiting.order_by("submitted_at")
    mine = (
        visible_versions(user)
        .filter(submitted_by=user)
        .select_related("model")
        .order_by("-submitted_at")
    )
    decided = (
        Review.objects.filter(version__in=visible_versions(user), discarded_at__isnull=True)
        .select_related("version__model", "reviewer")
        .order_by("-created_at")
    )
    due = revalidation_due_for(user)
    context = {
        "nav_section": "reviews",
        "revalidation_due": due[:LIMIT],
        "revalidation_due_count": len(due),
        "waiting": list(waiting[:LIMIT]),
        "waiting_count": waiting.count(),
        "mine": list(mine[:LIMIT]),
        "decided": list(decided[:LIMIT]),
        "Status": ModelVersion.Status,
    }
    return render(request, "approvals/inbox.html", context)


def review_count(request: HttpRequest) -> dict:
    """Context processor: the navigation's badge of versions waiting for me."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"reviews_waiting": versions_waiting_for(user).count()}
