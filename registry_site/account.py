"""The signed-in user's own pages: profile with API tokens, and teams."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.rules import LOGIN, access
from models_app import quotas
from models_app.access import Role, visible_models
from models_app.models import RegisteredModelGroupObjectPermission
from registry_site.models import ApiToken
from registry_site.tokens import token_create, token_revoke


@access(LOGIN)
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """Your account and API tokens. Any signed-in user, for their own tokens only."""
    new_secret = None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        raw_days = request.POST.get("expires_days", "").strip()
        try:
            days = int(raw_days) if raw_days else None
        except ValueError:
            errors = {"expires_days": ["Expiry must be a whole number of days."]}
        else:
            try:
                token, new_secret = token_create(
                    actor=request.user,
                    user=request.user,
                    name=request.POST.get("name", ""),
                    scope=request.POST.get("scope", ApiToken.Scope.READ),
                    expires_days=days,
                )
            except ValidationError as e:
                errors = e.message_dict
    tokens = request.user.api_tokens.all()
    context = {
        "tokens": tokens,
        "new_secret": new_secret,
        "errors": errors,
        "posted": request.POST,
        "storage": quotas.usage_of(request.user),
    }
    # The secret is rendered in this response only (never stored): no redirect after POST.
    response = render(request, "registry_site/profile.html", context, status=400 if errors else 200)
    response["Cache-Control"] = "no-store"
    return response


@access(LOGIN)
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of your own tokens. Someone else's token is a 404."""
    token = request.user.api_tokens.filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token {token.name!r} revoked; it stops working immediately.")
    return redirect("profile")


@access(LOGIN)
@require_GET
def teams(request: HttpRequest) -> HttpResponse:
    """The teams you are in and the models each team can reach that you may also view."""
    groups = request.user.groups.order_by("name")
    visible = visible_models(request.user)
    grants = RegisteredModelGroupObjectPermission.objects.filter(
        group__in=groups, permission__codename=Role.VIEW.perm
    ).values_list("group_id", "content_object_id")
    by_group: dict[int, set[int]] = {}
    for group_id, model_id in grants:
        by_group.setdefault(group_id, set()).add(model_id)
    all_ids = set().union(*by_group.values()) if by_group else set()
    models = {m.pk: m for m in visible.filter(pk__in=all_ids).order_by("name_key")}
    rows = [
        (
            g,
            [
                models[pk]
                for pk in sorted(by_group.get(g.pk, ()), key=lambda pk: models[pk].name_key)
                if pk in models
            ],
        )
        for g in groups.annotate(member_count=Count("user"))
    ]
    return render(request, "registry_site/teams.html", {"rows": rows})
