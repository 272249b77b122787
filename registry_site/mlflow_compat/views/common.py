"""Lookups and checks the MLflow views share, and the declaration of each view's role."""

import re
from collections.abc import Callable
from functools import wraps

from django.http import Http404, HttpRequest
from django.urls import reverse

from approvals import gates
from approvals.models import Alias
from core import sql
from core.rules import access
from models_app.access import Role, get_model_by_name_for_user
from models_app.models import ModelVersion, RegisteredModel
from registry_site.mlflow_compat.protocol import ApiError, Params, invalid
from registry_site.mlflow_compat.serializers import RESERVED_TAG_PREFIX

TAG_KEY = re.compile(r"^[\w\-. :/]+$")
MAX_TAG_VALUE = 5000  # the registry's column; MLflow allows more
ALIAS = re.compile(r"^[\w\-]+$")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def for_model(role: Role, *, rule: str | None = None) -> Callable:
    """Declare and enforce an MLflow view's role on the model its ``name`` parameter names
    (under ``@endpoint``, which signs the caller in first): the parameters are read once, the
    model fetched through the access helper with ``role`` (RESOURCE_DOES_NOT_EXIST for who may
    not view it, PERMISSION_DENIED without the role), and the view called with both. ``rule``
    names the declared rule where the role depends on the request (aliases)."""

    def decorator(view: Callable) -> Callable:
        @access(rule or f"model:{role.value}")
        @wraps(view)
        def inner(request: HttpRequest):
            params = Params(request)
            name = params.text("name", required=True, max_length=200)
            return view(request, params, get_model_by_name_for_user(request.user, name, role))

        return inner

    return decorator


def version_of(model: RegisteredModel, number: int) -> ModelVersion:
    """A version of a model the caller may view (the model came from an access helper)."""
    rows = sql.fetch(
        f"SELECT {sql.columns(ModelVersion, 'v')} FROM {sql.table(ModelVersion)} v "  # noqa: S608
        "WHERE v.model_id = %s AND v.number = %s",
        [model.pk, number],
    )
    if not rows:
        raise Http404(f"Model version {model.name} {number} not found.")
    version = sql.instance(ModelVersion, rows[0])
    version.model = model
    return version


def check_tag(key: str, value: str = "") -> tuple[str, str]:
    """MLflow's rules for tag keys, the registry's size limit, and its reserved prefix."""
    if not key:
        raise invalid("Tag keys must not be empty.")
    if len(key) > 250:
        raise invalid(f"Tag keys are at most 250 characters (got {len(key)}).")
    if not TAG_KEY.match(key) or key.startswith("/") or ".." in key.split("/"):
        raise invalid(
            f"Invalid tag key {key[:80]!r}: use letters, digits, '_', '-', '.', ' ', ':' and '/'."
        )
    if key.lower().startswith(RESERVED_TAG_PREFIX):
        raise invalid(
            f"Tags starting with {RESERVED_TAG_PREFIX!r} are kept by the registry "
            "(registry.status is the approval state); they cannot be set or deleted."
        )
    if len(value) > MAX_TAG_VALUE:
        raise invalid(f"Tag values are at most {MAX_TAG_VALUE} characters (got {len(value)}).")
    return key, value


def check_alias(alias: str) -> str:
    """MLflow's alias rules; the registry keeps aliases in lower case."""
    if len(alias) > 255 or not ALIAS.match(alias):
        raise invalid(f"Invalid alias {alias[:80]!r}: use letters, digits, '_' and '-'.")
    if RESERVED_ALIAS.match(alias):
        raise invalid(
            f"Alias {alias!r} is reserved: 'latest' always means the newest version and "
            "'v<number>' names a version."
        )
    return alias.lower()


def refuse_unsigned(request: HttpRequest, model: RegisteredModel, name: str) -> None:
    """The MLflow API never signs (docs/signatures.md): where the model's review policy
    requires signatures, moving or removing production or staging through it is refused with
    PERMISSION_DENIED, naming the dashboard page where the move is signed."""
    if name not in Alias.PROTECTED_NAMES or not gates.policy_for(model).signatures_required:
        return
    page = request.build_absolute_uri(reverse("approvals:aliases", args=[model.slug]))
    raise ApiError(
        "PERMISSION_DENIED",
        f"Moving {name} of {model.name} is an electronic signature under its review policy, "
        f"and the MLflow API never signs: sign it with your password on the dashboard, {page}",
        403,
    )
