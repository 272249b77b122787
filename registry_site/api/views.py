"""The API's plain Django views: its root, and the docs page rendered on the server from the
OpenAPI schema (Swagger UI would load scripts from a CDN, which the site's CSP forbids)."""

from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.rules import LOGIN, access

from .helpers import error_response

METHOD_ORDER = ["get", "post", "put", "patch", "delete"]


def signed_in(view):
    """Signed-in users (session or token); anonymous callers get a 401 JSON error."""

    @wraps(view)
    def inner(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return error_response(
                401,
                "unauthenticated",
                "Sign in, or send an API token as 'Authorization: Bearer <token>'.",
            )
        if request.method not in ("GET", "HEAD"):
            return error_response(405, "method_not_allowed", "Use GET.")
        return view(request, *args, **kwargs)

    inner.access_rule = LOGIN
    return inner


@signed_in
def root(request: HttpRequest, **kwargs) -> HttpResponse:
    """Signed-in users: where the schema and the docs are."""
    return JsonResponse(
        {
            "openapi": request.build_absolute_uri(reverse("api:openapi-json")),
            "docs": request.build_absolute_uri(reverse("api:docs")),
        }
    )


@access(LOGIN)
@require_GET
def docs(request: HttpRequest, api) -> HttpResponse:
    """Signed-in users: every operation of the API, from the generated OpenAPI schema of
    ``api`` (the API that routes here passes itself)."""
    schema = api.get_openapi_schema()
    sections: dict[str, list[dict]] = {}
    for route, item in schema["paths"].items():
        for method in METHOD_ORDER:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            sections.setdefault(tag, []).append(
                {
                    "method": method.upper(),
                    "path": route,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "description": p.get("description", "")
                            or p.get("schema", {}).get("description", ""),
                        }
                        for p in operation.get("parameters", [])
                    ],
                    "has_body": "requestBody" in operation,
                    "statuses": sorted(operation.get("responses", {})),
                }
            )
    return render(
        request,
        "api/docs.html",
        {
            "nav_section": "api",
            "info": schema["info"],
            "openapi_version": schema["openapi"],
            "sections": sorted(sections.items()),
            "schema_url": reverse("api:openapi-json"),
        },
    )
