"""What every API route shares: the access-rule declaration, lookups through the access
helpers, pagination and the error body."""

from collections.abc import Callable, Iterable

from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse

from models_app.access import Role, get_model_by_name_for_user
from models_app.models import Artifact, ModelVersion, RegisteredModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_PAGE = 100_000
MAX_ID = 2**31 - 1  # path and body ids above this cannot exist (and would overflow lookups)


def requires(rule: str) -> Callable:
    """Declare an operation's access rule (core.rules vocabulary). The API refuses
    to build its URLs if an operation has none; anonymous callers get 401 from the API's auth,
    object rules are checked in the operation through models_app.access."""

    def decorator(view: Callable) -> Callable:
        view.access_rule = rule
        return view

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


# ---------------------------------------------------------------------------------------------
# Lookups: always through the access helpers (outsiders 404 like a missing object, 403 for a
# viewer without the role).


def model_for(request: HttpRequest, name: str, role: Role = Role.VIEW) -> RegisteredModel:
    return get_model_by_name_for_user(request.user, name, role)


def version_for(
    request: HttpRequest, name: str, number: int, role: Role = Role.VIEW
) -> ModelVersion:
    model = model_for(request, name, role)
    if not 1 <= number <= MAX_ID:  # cannot exist (and would overflow the lookup)
        raise Http404("No such version.")
    version = ModelVersion.objects.filter(model=model, number=number).first()
    if version is None:
        raise Http404("No such version.")
    version.model = model  # keeps the roles the access helper attached
    return version


def artifact_for(request: HttpRequest, name: str, number: int, path: str, role=Role.VIEW):
    version = version_for(request, name, number, role)
    artifact = Artifact.objects.filter(version=version, path=path).first()
    if artifact is None:
        raise Http404("No such file.")
    artifact.version = version
    return artifact


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
