import logging

from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure

from audit import chain
from core.errors import StorageFull, StorageUnavailable
from models_app.access import visible_models
from models_app.names import name_key
from registry_site.tokens import authenticate_token

log = logging.getLogger(__name__)

QUERY_TOKEN_PARAMS = ("token", "access_token", "api_key", "apikey", "bearer")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


MLFLOW_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    503: "TEMPORARILY_UNAVAILABLE",
}


MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/")  # the artifact proxy is under /api/2.0/ too
# Where a Bearer token signs the request in. Token requests skip CSRF, so anywhere else (the
# dashboard, /admin/) a leaked token would act as a signed-in browser: there it is ignored.
TOKEN_PREFIXES = ("/api/v1/", *MLFLOW_PREFIXES)


def api_error(status: int, code: str, message: str, *, path: str = "") -> JsonResponse:
    if path.startswith(MLFLOW_PREFIXES):  # the MLflow client reads error_code and message
        body = {
            "error_code": MLFLOW_CODES.get(status, "INVALID_PARAMETER_VALUE"),
            "message": message,
        }
    else:
        body = {"error": {"code": code, "message": message}}
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="model-registry"'
    return response


class TokenAuthMiddleware:
    """``Authorization: Bearer <token>`` signs the request in as the token's user, on the API
    prefixes only (TOKEN_PREFIXES); elsewhere the header is ignored, so a token alone is an
    anonymous visitor there (the login page for pages, the admin's login for /admin/).

    Token requests are exempt from CSRF (no cookies are involved); a read-only token may only
    read. Invalid, expired and revoked tokens all get the same 401. A token in the query string
    is refused: URLs end up in logs and browser history.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):

        if any(p in request.GET for p in QUERY_TOKEN_PARAMS):
            return api_error(
                400,
                "token_in_query",
                "Send tokens in the Authorization header, not in the URL.",
                path=request.path,
            )
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("bearer ") or not request.path_info.startswith(
            TOKEN_PREFIXES
        ):
            request.api_token = None
            return self.get_response(request)
        token = authenticate_token(header[7:].strip())
        if token is None:
            return api_error(401, "unauthenticated", "Invalid or expired token.", path=request.path)
        if request.method not in SAFE_METHODS and not token.can_write:
            return api_error(403, "read_only_token", "This token is read-only.", path=request.path)
        request.user = token.user
        request._cached_user = token.user
        request.api_token = token
        request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class DeniedActionAuditMiddleware:
    """A signed-in user refused an action (a non-GET request answered 403) leaves an audit
    event: who tried what, where. Reads are not recorded: a 403 on a page is not an attempt to
    change anything, and neither are requests refused for a missing or wrong CSRF token (any
    site can make a browser send one). The event names the model only if the user may view it:
    otherwise anyone could add events to (and so empty the MLflow answer cache of) a model
    they cannot see. Runs in its own transaction, after the refused request's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 403
            and request.method not in SAFE_METHODS
            and getattr(request, "user", None) is not None
            and request.user.is_authenticated
            and not getattr(request, "csrf_refused", False)
        ):
            self._record(request)
        return response

    @staticmethod
    def _record(request) -> None:
        match = request.resolver_match
        kwargs = match.kwargs if match else {}
        # Dashboard URLs carry the model's slug, API URLs its name: both reduce to its key.
        ref = kwargs.get("slug") or kwargs.get("name")
        visible = visible_models(request.user)
        model = visible.filter(name_key=name_key(ref)).first() if ref else None
        try:
            with transaction.atomic():
                chain.record(
                    actor=request.user,
                    action="access.denied",
                    target=model,
                    model=model,
                    after={
                        "method": request.method,
                        "path": request.path[:300],
                        "view": match.view_name if match else "",
                    },
                )
        except Exception:  # noqa: BLE001 (the refusal stands even if it cannot be recorded)
            log.exception("could not record a denied action")


def csrf_failure(request, reason: str = ""):
    """Django's CSRF refusal (settings.CSRF_FAILURE_VIEW), marked on the request so that the
    denied-action audit leaves it out."""
    request.csrf_refused = True
    return django_csrf_failure(request, reason=reason)


class StorageErrorMiddleware:
    """Artifact storage down or full while a page or MLflow view used it: a plain 503 (or 507)
    saying so, instead of a server error. The services store files before they record them, so
    nothing was changed. (The JSON API answers these itself, in its own error format.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, StorageUnavailable):
            return None
        log.warning("storage failed on %s %s: %r", request.method, request.path, exception)
        status = 507 if isinstance(exception, StorageFull) else 503
        response = HttpResponse(str(exception), status=status, content_type="text/plain")
        if status == 503:
            response["Retry-After"] = "30"
        return response
