"""The reviewer's inbox: what waits for me, approvals due for revalidation, what I submitted,
what was decided lately."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals.models import Review
from approvals.selectors import revalidation_due_for, versions_waiting_for, waiting_count
from core.rules import LOGIN, access
from models_app.access import visible_models, visible_versions
from models_app.models import ModelVersion

LIMIT = 50


@access(LOGIN)
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Any signed-in user; each list holds only versions of models they may view."""
    user = request.user
    waiting = versions_waiting_for(user).select_related("model", "created_by", "submitted_by")
    waiting = waiting.order_by("submitted_at", "pk")
    mine = (
        visible_versions(user)
        .filter(submitted_by=user)
        .select_related("model")
        .order_by("-submitted_at")
    )
    decided = Review.objects.filter(discarded_at__isnull=True)
    if not user.is_superuser:  # (a superuser sees every model: no filter to walk past)
        decided = decided.filter(version__model__in=visible_models(user))
    decided = decided.select_related("version__model", "reviewer").order_by("-created_at", "-pk")
    due = revalidation_due_for(user)
    # (The navigation's badge shows the same number: review_count reads it from the request.)
    request.reviews_waiting = waiting_count(user)
    context = {
        "nav_section": "reviews",
        "revalidation_due": due[:LIMIT],
        "revalidation_due_count": len(due),
        "waiting": list(waiting[:LIMIT]),
        "waiting_count": request.reviews_waiting,
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
    counted = getattr(request, "reviews_waiting", None)  # (by the inbox, for this request)
    return {"reviews_waiting": waiting_count(user) if counted is None else counted}
