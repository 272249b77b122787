"""The tracking views' fetch-and-check: one decorator per resource declares the route's rule
(for the permission matrix's URL walk) and fetches the experiment, run or logged model the
request names through tracking.access with that rule, so a view cannot declare one rule and
fetch with another. Who may not see the object gets RESOURCE_DOES_NOT_EXIST, exactly as for a
missing one; who sees it but may not change it gets PERMISSION_DENIED."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest

from core.rules import (
    EXPERIMENT_EDIT,
    EXPERIMENT_MANAGE,
    EXPERIMENT_VIEW,
    RUN_VIEW,
    RUN_WRITE,
    access,
)
from models_app.access import Role
from registry_site.mlflow_compat.protocol import Params, invalid
from tracking.access import get_experiment_for_user, get_logged_model_for_user, get_run_for_user
from tracking.services import MetricIn

EXPERIMENT_RULES = {
    Role.VIEW: EXPERIMENT_VIEW,
    Role.EDIT: EXPERIMENT_EDIT,
    Role.MANAGE: EXPERIMENT_MANAGE,
}
MAX_INT64 = 2**63 - 1


def for_experiment(role: Role) -> Callable:
    """A view of the experiment named by ``experiment_id``, with ``role`` on it."""

    def decorator(view: Callable) -> Callable:
        @access(EXPERIMENT_RULES[role])
        @wraps(view)
        def inner(request: HttpRequest):
            params = Params(request)
            experiment_id = params.text("experiment_id", required=True, max_length=40)
            return view(request, params, get_experiment_for_user(request.user, experiment_id, role))

        return inner

    return decorator


def for_run(*, write: bool) -> Callable:
    """A view of the run named by ``run_id`` (or the older ``run_uuid``): visible to the caller,
    and created by them when the view writes."""

    def decorator(view: Callable) -> Callable:
        @access(RUN_WRITE if write else RUN_VIEW)
        @wraps(view)
        def inner(request: HttpRequest):
            params = Params(request)
            run_id = params.text("run_id", max_length=40) or params.text(
                "run_uuid", required=True, max_length=40
            )
            return view(request, params, get_run_for_user(request.user, run_id, write=write))

        return inner

    return decorator


def for_logged_model(*, write: bool | None) -> Callable:
    """A view of the logged model named by the URL's ``model_id``: visible to the caller, and
    created by them for writes (``write=None``: writes are the methods other than GET)."""

    def decorator(view: Callable) -> Callable:
        @access(RUN_WRITE if write else RUN_VIEW)
        @wraps(view)
        def inner(request: HttpRequest, model_id: str, **kwargs):
            writes = request.method != "GET" if write is None else write
            model = get_logged_model_for_user(request.user, model_id, write=writes)
            return view(request, Params(request), model, **kwargs)

        return inner

    return decorator


def number(value, name: str) -> float:
    """A metric value: a JSON number, or "NaN", "Infinity", "-Infinity" as protobuf's JSON
    mapping writes them."""
    if isinstance(value, bool):
        raise invalid(f"'{name}' must be a number.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise invalid(f"'{name}' must be a number, got {value[:40]!r}.") from None
    raise invalid(f"'{name}' must be a number.")


def integer(value, name: str, *, default: int | None = None) -> int:
    """An int64 field (protobuf's JSON mapping may send it as a string)."""
    if value is None or value == "":
        if default is None:
            raise invalid(f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, bool):
        raise invalid(f"'{name}' must be an integer.")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or not -MAX_INT64 <= value <= MAX_INT64:
        raise invalid(f"'{name}' must be a 64-bit integer.")
    return value


def metric_in(row, where: str) -> MetricIn:
    if not isinstance(row, dict) or not isinstance(row.get("key"), str):
        raise invalid(f"'{where}' must be an object with a string 'key'.")
    model_id = row.get("model_id") or ""
    if not isinstance(model_id, str):
        raise invalid(f"'{where}.model_id' must be a string.")
    if "value" not in row:
        raise invalid(f"Missing value for required parameter '{where}.value'.")
    return MetricIn(
        key=row["key"],
        value=number(row["value"], f"{where}.value"),
        timestamp=integer(row.get("timestamp"), f"{where}.timestamp"),
        step=integer(row.get("step"), f"{where}.step", default=0),
        model_id=model_id,
    )


def pair(params: Params) -> tuple[str, str]:
    """``key`` and ``value`` of a single param or tag (limits: the service's)."""
    key = params.text("key", required=True, max_length=10000)
    value = params.data.get("value", "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid("'value' must be a string.")
    return key, value


def pairs(params: Params, name: str) -> list[tuple[str, str]]:
    """``[{key, value}]`` (params, tags); values must be strings."""
    return params.tags(name)


def objects(params: Params, name: str) -> list:
    value = params.data.get(name) if not params.query else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"'{name}' must be a list.")
    return value
