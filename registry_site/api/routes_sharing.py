"""Sharing a model: who holds which role. Manage role only; changes go through
models_app.sharing (which keeps at least one manager: 409 otherwise)."""

from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router
from ninja.responses import Status

from core.rules import MODEL_MANAGE
from models_app.access import Role
from models_app.sharing import Grant, find_principal, grants_for, sharing_set

from .helpers import model_for, requires
from .schemas import ERRORS, GrantIn, GrantListOut, GrantOut, PageQuery

router = Router(tags=["sharing"])
Kind = Literal["users", "teams"]
GrantPath = "/{name}/sharing/{kind}/{principal}"


def _grant_out(grant: Grant) -> dict:
    return {
        "kind": grant.kind,
        "name": grant.name,
        "roles": [r.value for r in Role if r in grant.roles],
        "top_roles": [r.value for r in grant.top_roles],
    }


@router.get("/{name}/sharing", response={200: GrantListOut, **ERRORS}, url_name="sharing")
@requires(MODEL_MANAGE)
def list_grants(request: HttpRequest, name: str, paging: Query[PageQuery]):
    """Manage role. Teams first, then users, by name."""
    model = model_for(request)
    grants = grants_for(model)
    start = (paging.page - 1) * paging.limit
    rows = grants[start : start + paging.limit]
    next_url = None
    if start + paging.limit < len(grants):
        query = request.GET.copy()
        query["page"] = str(paging.page + 1)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"items": [_grant_out(g) for g in rows], "next": next_url, "count": len(grants)}


@router.put(GrantPath, response={200: GrantOut, **ERRORS}, url_name="grant")
@requires(MODEL_MANAGE)
def set_grant(request: HttpRequest, name: str, kind: Kind, principal: str, payload: GrantIn):
    """Manage role. Gives the user or team exactly these roles (plus the ones they imply)."""
    model = model_for(request)
    who = find_principal(kind.removesuffix("s"), principal)
    roles = sharing_set(
        actor=request.user, model=model, principal=who, roles={Role(r) for r in payload.roles}
    )
    return _grant_out(Grant(who, roles))


@router.delete(GrantPath, response={204: None, **ERRORS}, url_name="grant")
@requires(MODEL_MANAGE)
def remove_grant(request: HttpRequest, name: str, kind: Kind, principal: str):
    """Manage role. Removes every role of the user or team (not the last manager: 409)."""
    model = model_for(request)
    who = find_principal(kind.removesuffix("s"), principal)
    sharing_set(actor=request.user, model=model, principal=who, roles=set())
    return Status(204, None)
