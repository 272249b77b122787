"""The JSON API (/api/v1/): one django-ninja instance, its authentication and its errors.

Authentication: the request's user is already set, by the Bearer-token middleware
(registry_site.middleware.TokenAuthMiddleware: tokens are CSRF-exempt, read-only tokens may only
read) or by the session. A session request that changes state must pass Django's CSRF check.
Anonymous callers get 401.

Every error, from ninja's own validation to the services' exceptions, is answered as
``{"error": {"code", "message", "field"?}}`` with the status that says what went wrong.
"""

import logging

from django.core.exceptions import ImproperlyConfigured, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest
from django.urls import path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.urls import get_openapi_urls
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth

from approvals.services import GateFailure
from core import jsonbody
from core.errors import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    Conflict,
    QuotaExceeded,
    StorageFull,
    StorageUnavailable,
    UploadTooLarge,
)
from core.rules import LOGIN
from models_app.names import NameReserved

from . import views
from .helpers import error_response
from .schemas import PROTECTED_FIELDS

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Authentication


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``; the middleware has checked the token already."""

    def __call__(self, request: HttpRequest):
        return request.user if getattr(request, "api_token", None) is not None else None

    def authenticate(self, request: HttpRequest, token: str):  # pragma: no cover (unused)
        return None


class Session(SessionAuth):
    """The dashboard's session. Signed-in first (else 401), then ninja's CSRF check for
    requests that change state (403)."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        self._get_key(request)  # raises HttpError(403) when CSRF fails
        return request.user


class StrictJSONParser(Parser):
    """JSON bodies without NaN or Infinity (not JSON, and not storable as metrics)."""

    def parse_body(self, request: HttpRequest):
        def refuse(name: str):
            raise ValueError(f"{name} is not allowed in JSON")

        return jsonbody.loads(request.body, parse_constant=refuse)


# ---------------------------------------------------------------------------------------------
# The API


class RegistryAPI(NinjaAPI):
    """NinjaAPI whose URLs carry access rules (for the URL walk in
    tests/registry_site/test_url_rules.py), answer 405 and NUL bytes in JSON, whose root,
    schema and docs page need a signed-in user, and whose OpenAPI schema is built once per
    process."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._schemas: dict[str, dict] = {}  # by path prefix

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """The schema, built on first use (a quarter of a second) and then shared: it follows
        from the code alone, not from the request or its user. openapi.json and the docs page
        read it; nothing may change it. Per path prefix, which the script prefix decides."""
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = self._schemas.get(path_prefix)
        if schema is None:
            schema = super().get_openapi_schema(path_prefix=path_prefix)
            self._schemas[path_prefix] = schema
        return schema

    def _get_urls(self):
        urls = [_declared(p, LOGIN, {}) for p in get_openapi_urls(self)]
        urls.append(_declared(path("docs", views.docs, {"api": self}, name="docs"), LOGIN, {}))
        for bound in self._get_bound_routers():
            patterns = iter(bound.urls_paths(bound.prefix))
            for route, path_view in bound.path_operations.items():
                rules = {}
                for operation in path_view.operations:
                    rule = getattr(operation.view_func, "access_rule", None)
                    if rule is None:
                        raise ImproperlyConfigured(
                            f"API operation {operation.view_func.__name__} ({route}) declares "
                            "no access rule: decorate it with @requires(...)."
                        )
                    rules.update(dict.fromkeys(operation.methods, rule))
                # One rule per route for the URL walk: the read's, else the first declared.
                rule = rules.get("GET") or next(iter(rules.values()))
                for _ in path_view.operations:
                    urls.append(_declared(next(patterns), rule, rules))
        urls.append(_declared(path("", views.root, name="api-root"), LOGIN, {}))
        return urls


def _declared(pattern, rule: str, rules: dict):
    """The pattern's view, answering 405 and NUL bytes as JSON errors, with its access rule."""
    inner = pattern.callback

    def view(request: HttpRequest, *args, **kwargs):
        if "\x00" in request.path or any("\x00" in k + v for k, v in request.GET.items()):
            return error_response(
                400, "validation_error", "The address must not contain NUL characters."
            )
        response = inner(request, *args, **kwargs)
        if response.status_code == 405 and "application/json" not in response.get(
            "Content-Type", ""
        ):
            allowed = response.get("Allow", "")
            answer = error_response(
                405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}."
            )
            answer["Allow"] = allowed
            return answer
        return response

    view.csrf_exempt = True  # the API's auth does the CSRF check for session requests
    view.access_rule = rule
    view.access_rules = rules
    return path(str(pattern.pattern), view, pattern.default_args, name=pattern.name)


api = RegistryAPI(
    title="Model registry API",
    version="1",
    description=(
        "The registry's JSON API for training pipelines and deployment tools. Authenticate "
        "with `Authorization: Bearer <token>` (create tokens on your profile page). "
        'Errors are `{"error": {"code", "message", "field"}}`; lists take `?limit=` '
        '(≤ 200) and `?page=` and answer `{"items", "next", "count"}`.'
    ),
    urls_namespace="api",
    auth=[BearerToken(), Session(csrf=True)],
    docs_url=None,  # ours, server-side (views.docs): Swagger UI needs a CDN the CSP forbids
    docs_decorator=views.signed_in,
    parser=StrictJSONParser(),
)


# ---------------------------------------------------------------------------------------------
# Errors

HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "unprocessable",
    429: "too_many_requests",
    503: "unavailable",
}
NOT_FOUND = "Not found."


def _field_of(loc: tuple) -> str:
    """A readable field path from a pydantic location, without pydantic's union tags."""
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif "[" in str(part) or str(part) in ("str", "int", "float", "bool", "none"):
            continue
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def _message_of(error: dict, field: str) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "extra_forbidden":
        top = field.split(".")[0].split("[")[0]
        if top in PROTECTED_FIELDS:
            return f"{top} is set by the registry and cannot be changed through the API."
        return f"Unknown field {field!r}."
    if kind == "missing":
        return f"{field} is required."
    if kind == "value_error":
        return f"{field}: {ctx.get('error', error.get('msg', ''))}."
    if kind in ("less_than_equal", "less_than") and "le" in ctx:
        return f"{field} must be at most {ctx['le']}."
    if kind in ("greater_than_equal", "greater_than") and "ge" in ctx:
        return f"{field} must be at least {ctx['ge']}."
    return f"{field}: {error.get('msg', 'is invalid')}." if field else error.get("msg", "")


@api.exception_handler(NinjaValidationError)
def _ninja_validation(request, exc: NinjaValidationError):
    errors = exc.errors or [{}]
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        # /models/x/versions/abc: an address that cannot exist, like a missing object.
        return error_response(404, "not_found", NOT_FOUND)
    details = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        # ("body", "<param name>", field...) or ("query" | "header", field...)
        field = _field_of(loc[2:] if loc[:1] == ("body",) else loc[1:])
        details.append({"field": field or None, "message": _message_of(error, field)})
    first = details[0]
    return error_response(
        400, "validation_error", first["message"], field=first["field"], details=details
    )


def _name_taken(exc: DjangoValidationError) -> bool:
    errors = exc.error_dict.get("name", []) if hasattr(exc, "error_dict") else []
    return any(getattr(e, "code", None) == "name_taken" for e in errors)


@api.exception_handler(DjangoValidationError)
def _django_validation(request, exc: DjangoValidationError):
    if _name_taken(exc):
        # Another model holds the name (or one too close): a conflict with the registry's
        # state, the same answer whether it was created long ago or a moment ago by a client
        # racing this one.
        return error_response(409, "conflict", exc.message_dict["name"][0], field="name")
    if hasattr(exc, "error_dict"):
        details = [
            {"field": None if key == "__all__" else key, "message": message}
            for key, messages in exc.message_dict.items()
            for message in messages
        ]
    else:
        details = [{"field": None, "message": message} for message in exc.messages]
    first = details[0] if details else {"field": None, "message": "Invalid input."}
    return error_response(
        400, "validation_error", first["message"], field=first["field"], details=details
    )


@api.exception_handler(NameReserved)
def _name_reserved(request, exc: NameReserved):
    message = exc.message_dict["name"][0]
    return error_response(409, "name_reserved", message, field="name")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return error_response(
        401,
        "unauthenticated",
        "Sign in, or send an API token as 'Authorization: Bearer <token>'.",
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    message = str(exc)
    if exc.status_code == 403 and "CSRF" in message:
        code, message = "csrf_failed", "CSRF check failed: send the X-CSRFToken header."
    elif exc.status_code == 400 and isinstance(exc.__cause__, jsonbody.TooDeep):
        code, message = "malformed_json", str(exc.__cause__)
    elif exc.status_code == 400 and "parse" in message:
        code, message = "malformed_json", "The request body is not valid JSON."
    return error_response(exc.status_code, code, message)


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    return error_response(404, "not_found", str(exc) or NOT_FOUND)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc: PermissionDenied):
    return error_response(403, "forbidden", str(exc) or "You may not do this.")


@api.exception_handler(GateFailure)
def _gates_failed(request, exc: GateFailure):
    return error_response(409, "gates_failed", str(exc), gates=[r.as_dict() for r in exc.results])


@api.exception_handler(Conflict)
def _conflict(request, exc: Conflict):
    return error_response(409, "conflict", str(exc))


@api.exception_handler(UploadTooLarge)
def _too_large(request, exc: UploadTooLarge):
    return error_response(413, "too_large", str(exc))


@api.exception_handler(QuotaExceeded)
def _over_quota(request, exc: QuotaExceeded):
    code = "insufficient_storage" if exc.exhausted else "over_quota"
    return error_response(exc.status, code, str(exc))


@api.exception_handler(StorageUnavailable)
def _storage_unavailable(request, exc: StorageUnavailable):
    log.warning("storage failed on %s %s: %r", request.method, request.path, exc.__cause__)
    if isinstance(exc, StorageFull):
        return error_response(507, "storage_full", str(exc))
    response = error_response(503, "storage_unavailable", str(exc))
    response["Retry-After"] = "30"
    return response


@api.exception_handler(RequestDataTooBig)
def _body_too_large(request, exc):
    return error_response(413, "too_large", "The request body is too large for a JSON request.")


@api.exception_handler(DataError)
def _data_error(request, exc: DataError):
    # Bad input that got past validation to the database (a value longer than its column, a
    # number out of range): still the client's input, so a 400, logged to be validated earlier.
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    log.warning("database refused input on %s %s: %s", request.method, request.path, first_line)
    return error_response(
        400,
        "validation_error",
        f"A value is too long or out of range for the registry ({first_line}).",
    )


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request, exc):
    # The database is down or dropped the connection (core/errors.py): the request's
    # transaction is rolled back, so nothing it did is kept; the client may retry.
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
    response = error_response(503, "unavailable", DATABASE_UNAVAILABLE)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def _server_error(request, exc: Exception):
    # A bug, not bad input: logged with its traceback (and re-raised by Django's test client).
    log.error("API error on %s %s", request.method, request.path, exc_info=exc)
    got_request_exception.send(sender=None, request=request)
    return error_response(500, "server_error", "Something went wrong on our side.")


from . import (  # noqa: E402 (the routes register themselves on the api above)
    routes_aliases,
    routes_audit,
    routes_datasets,
    routes_models,
    routes_reviews,
    routes_sharing,
    routes_versions,
)

api.add_router("/models", routes_models.router)
api.add_router("/models", routes_versions.router)
api.add_router("/models", routes_reviews.router)
api.add_router("/models", routes_aliases.router)
api.add_router("/models", routes_sharing.router)
api.add_router("/datasets", routes_datasets.router)
api.add_router("/audit", routes_audit.router)
