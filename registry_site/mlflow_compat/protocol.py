"""The MLflow wire conventions every endpoint shares: who is calling, reading arguments, and
answering errors the way the MLflow client understands them.

Errors are ``{"error_code": NAME, "message": text}`` with the statuses of stock MLflow (see
docs/mlflow.md): the client raises on the *code*, so a wrong code breaks ``register_model`` and
friends even when the status is right. A caller's mistake is never a 5xx: the client retries
those for minutes.
"""

import base64
import binascii
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    ValidationError,
)
from django.http import Http404, HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from core import jsonbody
from core.errors import Conflict, StorageFull, StorageUnavailable, UploadTooLarge
from registry_site.tokens import PREFIX, authenticate_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
REALM = 'Basic realm="model-registry", charset="UTF-8"'


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", message, 404)


def error_response(code: str, message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error_code": code, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = REALM
    return response


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        parts = []
        for field, errors in error.error_dict.items():
            for message in ValidationError(errors).messages:
                parts.append(message if field == "__all__" else f"{field}: {message}")
        return " ".join(parts)
    return " ".join(error.messages)


def _is_name_taken(error: ValidationError) -> bool:
    """models_app.services says so in the message of its ``name`` error (its code stays on
    the outer error and is lost in the dict)."""
    if not hasattr(error, "error_dict"):
        return False
    return any(
        e.code == "name_taken" or "is taken" in " ".join(e.messages)
        for e in error.error_dict.get("name", [])
    )


# ---------------------------------------------------------------------------------------------
# Authentication: Bearer tokens are handled by TokenAuthMiddleware; Basic is handled here, per
# request, without a session (the MLflow client sends the credentials on every call).


def _basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password


def _sign_in_basic(request: HttpRequest) -> JsonResponse | None:
    """Sign the request in from ``Authorization: Basic``; an error response if that fails.

    The password may be the user's password (throttled by axes like the sign-in page) or one
    of the user's API tokens (a read-only token may then only read, as with Bearer)."""
    credentials = _basic_credentials(request.META["HTTP_AUTHORIZATION"])
    if credentials is None:
        return error_response("UNAUTHENTICATED", "Malformed Basic credentials.", 401)
    username, password = credentials
    user = None
    if password.startswith(PREFIX):
        token = authenticate_token(password)
        if token is not None and token.user.get_username() == username:
            if request.method not in SAFE_METHODS and not token.can_write:
                return error_response("PERMISSION_DENIED", "This token is read-only.", 403)
            user = token.user
            request.api_token = token
    else:
        user = authenticate(request, username=username, password=password)
        if getattr(request, "axes_locked_out", False):
            # Still refused, but as a 401 the client reports at once: AxesMiddleware's page is
            # a 429, which the MLflow client retries for minutes.
            request.axes_locked_out = False
            minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
            return error_response(
                "UNAUTHENTICATED",
                f"Too many failed sign-ins for this account or address; try again in "
                f"{minutes} minutes, or use an API token.",
                401,
            )
    if user is None or not user.is_active:
        return error_response("UNAUTHENTICATED", "Invalid username or password.", 401)
    request.user = user
    request._cached_user = user
    request.mlflow_basic_auth = True
    return None


def _signed_in_by_header(request: HttpRequest) -> bool:
    return getattr(request, "api_token", None) is not None or getattr(
        request, "mlflow_basic_auth", False
    )


def _csrf_refusal(request: HttpRequest) -> JsonResponse | None:
    """Session-cookie callers that change state pass the same CSRF check as the dashboard."""
    middleware = CsrfViewMiddleware(lambda r: None)
    if middleware.process_view(request, None, (), {}) is None:
        return None
    return error_response(
        "PERMISSION_DENIED",
        "CSRF check failed. Scripts should authenticate with an API token "
        "(MLFLOW_TRACKING_TOKEN) or Basic credentials instead of a session cookie.",
        403,
    )


def endpoint(*methods: str) -> Callable:
    """An MLflow API view: authenticates Basic callers, answers anonymous ones with 401, checks
    the method and CSRF (for session callers), and turns the registry's exceptions into MLflow
    errors. Put it above ``@access(...)``: the declared rule is carried over."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def inner(request: HttpRequest, *args, **kwargs):
            if request.META.get("HTTP_AUTHORIZATION", "")[:6].lower() == "basic ":
                refusal = _sign_in_basic(request)
                if refusal is not None:
                    return refusal
            if not request.user.is_authenticated:
                return error_response(
                    "UNAUTHENTICATED",
                    "Sign in: set MLFLOW_TRACKING_TOKEN to an API token of the registry, or "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.",
                    401,
                )
            if request.method not in methods:
                response = error_response(
                    "ENDPOINT_NOT_FOUND",
                    f"{request.method} is not supported here; use {', '.join(methods)}.",
                    405,
                )
                response["Allow"] = ", ".join(methods)
                return response
            if request.method not in SAFE_METHODS and not _signed_in_by_header(request):
                refusal = _csrf_refusal(request)
                if refusal is not None:
                    return refusal
            try:
                return view(request, *args, **kwargs)
            except ApiError as e:
                return error_response(e.code, e.message, e.status)
            except Http404 as e:
                return error_response(
                    "RESOURCE_DOES_NOT_EXIST", str(e) or "Not found.", 404
                )  # the same answer for a hidden model as for a missing one
            except PermissionDenied as e:
                return error_response("PERMISSION_DENIED", str(e) or "Permission denied.", 403)
            except ValidationError as e:
                code = "RESOURCE_ALREADY_EXISTS" if _is_name_taken(e) else "INVALID_PARAMETER_VALUE"
                return error_response(code, validation_message(e), 400)
            except Conflict as e:
                return error_response("INVALID_STATE", str(e), 400)
            except UploadTooLarge as e:
                return error_response("INVALID_PARAMETER_VALUE", str(e), 413)
            except StorageUnavailable as e:
                full = isinstance(e, StorageFull)
                return error_response("TEMPORARILY_UNAVAILABLE", str(e), 507 if full else 503)
            except RequestDataTooBig:
                return error_response(
                    "INVALID_PARAMETER_VALUE", "The request body is too large.", 413
                )

        return csrf_exempt(inner)  # checked above, for session callers only

    return decorator


# ---------------------------------------------------------------------------------------------
# Arguments: the query string for GET, a JSON object body sent as application/json otherwise.
# Unknown fields are ignored (as stock MLflow's protobuf parsing does); wrong types are refused
# with the field's name.


class Params:
    def __init__(self, request: HttpRequest):
        self.query = request.method == "GET"
        if self.query:
            self.data = request.GET
            return
        raw = request.body
        if not raw.strip():
            self.data = {}
            return
        if request.content_type.lower() != "application/json":
            # A cross-site HTML form can post text/plain, form-encoded or multipart bodies
            # without a preflight; the MLflow client always sends application/json (charset
            # and other parameters are fine), and stock MLflow refuses anything else.
            raise invalid(
                "The request body must be JSON sent with 'Content-Type: application/json' "
                f"(got {request.content_type[:60] or 'no Content-Type'!r})."
            )
        try:
            data = jsonbody.loads(raw)
        except jsonbody.TooDeep as e:
            raise invalid(str(e)) from None
        except (ValueError, UnicodeDecodeError):
            raise invalid("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise invalid("The request body must be a JSON object.")
        self.data = data

    def _raw(self, name: str):
        return self.data.get(name)

    def text(self, name: str, *, required: bool = False, max_length: int = 5000) -> str:
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing value for required parameter '{name}'.")
            return ""
        if not isinstance(value, str):
            raise invalid(f"'{name}' must be a string, got {_json_type(value)}.")
        if "\x00" in value:
            raise invalid(f"'{name}' must not contain NUL characters.")
        if len(value) > max_length:
            raise invalid(f"'{name}' is at most {max_length} characters (got {len(value)}).")
        return value

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise invalid(f"'{name}' must be an integer, got {_json_type(value)}.")
        if isinstance(value, str):
            if not value.strip().lstrip("-").isdigit():
                raise invalid(f"'{name}' must be an integer, got {value[:40]!r}.")
            value = int(value)
        if not minimum <= value <= maximum:
            raise invalid(f"'{name}' must be between {minimum} and {maximum}, got {value}.")
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"'{name}' must be true or false, got {str(value)[:40]!r}.")

    def text_list(self, name: str) -> list[str]:
        if self.query:
            values = self.data.getlist(name)
        else:
            values = self.data.get(name)
            if values is None:
                return []
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list):
                raise invalid(f"'{name}' must be a list of strings, got {_json_type(values)}.")
        for value in values:
            if not isinstance(value, str):
                raise invalid(f"'{name}' must be a list of strings.")
        return values

    def version(self, name: str = "version") -> int:
        value = self._raw(name)
        if value is None or value == "":
            raise invalid(f"Missing value for required parameter '{name}'.")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.isdigit() or len(value) > 9:
            raise invalid(
                f"Version must be a positive integer (as a string), got {str(value)[:40]!r}."
            )
        return int(value)

    def tags(self, name: str = "tags") -> list[tuple[str, str]]:
        """``[{"key": …, "value": …}]`` as MLflow sends it (GET never carries tags)."""
        value = self.data.get(name) if not self.query else None
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(f"'{name}' must be a list of {{key, value}} objects.")
        rows = []
        for i, row in enumerate(value):
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                raise invalid(f"'{name}[{i}]' must be an object with a string 'key'.")
            tag_value = row.get("value", "")
            if tag_value is None:
                tag_value = ""
            if not isinstance(tag_value, str):
                raise invalid(f"'{name}[{i}].value' must be a string.")
            rows.append((row["key"], tag_value))
        return rows


def _json_type(value) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
