"""What every API route shares: the access-rule declaration, lookups through the access
helpers, pagination and the error body."""

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from approvals.services import SignatureInput
from core.rules import (
    MODEL_ALIAS,
    MODEL_EDIT,
    MODEL_MANAGE,
    MODEL_PROMOTE,
    MODEL_REVIEW,
    MODEL_VIEW,
)
from models_app.access import Role, get_artifact, get_model_by_name_for_user, get_version
from models_app.models import Artifact, ModelVersion, RegisteredModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_PAGE = 100_000
MAX_ID = 2**31 - 1  # path and body ids above this cannot exist (and would overflow lookups)


# The role each object rule needs on the model named in the path (aliases: view to reach the
# model; the service decides between edit and promote by the alias named).
RULE_ROLES = {
    MODEL_VIEW: Role.VIEW,
    MODEL_EDIT: Role.EDIT,
    MODEL_REVIEW: Role.REVIEW,
    MODEL_PROMOTE: Role.PROMOTE,
    MODEL_MANAGE: Role.MANAGE,
    MODEL_ALIAS: Role.VIEW,
}


def requires(rule: str) -> Callable:
    """Declare and enforce an operation's access rule (core.rules vocabulary). The API refuses
    to build its URLs if an operation has none; anonymous callers get 401 from the API's auth.
    For an object rule the model named by the path's ``name`` is fetched through the access
    helper with the rule's role before the operation runs (404 for who may not view it, 403
    without the role); the operation takes it from ``model_for(request)``."""

    def decorator(view: Callable) -> Callable:
        role = RULE_ROLES.get(rule)
        if role is None:
            view.access_rule = rule
            return view

        @wraps(view)  # django-ninja reads the operation's parameters through __wrapped__
        def checked(request: HttpRequest, *args, name: str, **kwargs):
            request.checked_model = get_model_by_name_for_user(request.user, name, role)
            return view(request, *args, name=name, **kwargs)

        checked.access_rule = rule
        return checked

    return decorator


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, **extra
) -> JsonResponse:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    body.update(extra)
    response = JsonResponse({"error": body}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="model-registry"'
    return response


def signature_of(request: HttpRequest, payload) -> SignatureInput | None:
    """The electronic signature a body carries (``password`` and ``meaning``), if any."""
    if not payload.password and not payload.meaning:
        return None
    return SignatureInput(password=payload.password, meaning=payload.meaning, request=request)


def deciding_token(request: HttpRequest) -> str:
    """The API token the request is signed in with, as a decision made by it alone is
    recorded ("name (key id)"); empty for session and Basic callers."""
    token = getattr(request, "api_token", None)
    return f"{token.name} ({token.key_id})" if token is not None else ""


# ---------------------------------------------------------------------------------------------
# Lookups: always through the access helpers (outsiders 404 like a missing object, 403 for a
# viewer without the role).


def model_for(request: HttpRequest) -> RegisteredModel:
    """The model of an object-rule operation, fetched and checked by ``requires``."""
    return request.checked_model


def version_for(request: HttpRequest, number: int) -> ModelVersion:
    """Version ``number`` of the operation's checked model (404 when there is none)."""
    return get_version(model_for(request), number)


def artifact_for(request: HttpRequest, number: int, path: str) -> Artifact:
    """The file at ``path`` of version ``number`` of the checked model (404 when missing)."""
    return get_artifact(version_for(request, number), path)


# ---------------------------------------------------------------------------------------------
# Pagination: ?limit= (1..200, default 50) and ?page= (from 1); every list answers
# {"items": [...], "next": <absolute URL or null>, "count": <total>}.


def paginate(
    request: HttpRequest, queryset, *, limit: int, page: int, serialize: Callable[[list], Iterable]
) -> dict:
    count = queryset.count()
    offset = (page - 1) * limit
    rows = list(queryset[offset : offset + limit]) if offset < count else []
    next_url = None
    if offset + limit < count:
        query = request.GET.copy()
        query["page"] = str(page + 1)
        query["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"items": list(serialize(rows)), "next": next_url, "count": count}


def api_url(request: HttpRequest, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(f"api:{name}", args=args))


def team_for(request: HttpRequest, name: str | None, current: Group | None = None) -> Group | None:
    """A team the user belongs to (any team for superusers; the current one stays allowed),
    as the dashboard's model form offers them."""
    if not name:
        return None
    if current is not None and current.name == name:
        return current
    teams = Group.objects.all() if request.user.is_superuser else request.user.groups.all()
    team = teams.filter(name=name).first()
    if team is None:
        raise ValidationError({"team": [f"You are not a member of a team named {name!r}."]})
    return team
