"""Declared access rules for every route.

Each view declares who may reach it with ``@access(...)``; the decorator both records the rule
(so a test can walk the URL resolver and fail on any route without one) and enforces the part
that does not depend on an object: anonymous visitors are sent to the login page unless the
rule is PUBLIC. Object-level checks (may this user see this model?) happen inside the view,
through the one access helper of each resource.
"""

from collections.abc import Callable, Iterator
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import URLPattern, URLResolver

PUBLIC = "public"  # anyone, signed in or not (login page, /healthz)
LOGIN = "login"  # any signed-in user; what they see is scoped to them
STAFF = "staff"  # the Django admin's own rule
# Object rules: signed in, and the model (or version) fetched through models_app.access with the
# named role (404 for those who may not view it, 403 for viewers without the role), declared and
# enforced by one decorator (models_app.access.model_route / version_route).
MODEL_VIEW = "model:view"
MODEL_EDIT = "model:edit"
MODEL_REVIEW = "model:review"
MODEL_PROMOTE = "model:promote"
MODEL_MANAGE = "model:manage"
# Aliases: edit for ordinary ones, promote for production/staging (decided by the alias named).
MODEL_ALIAS = "model:alias"

# Routes whose views come from other packages, declared by their URL prefix.
PREFIX_RULES = {
    "admin/": STAFF,
}


def _staff_only(view: Callable) -> Callable:
    @wraps(view)
    def inner(request, *args, **kwargs):
        if not (request.user.is_staff or request.user.is_superuser):
            raise Http404("No such page.")  # others see no sign that the page exists
        return view(request, *args, **kwargs)

    return inner


def access(rule: str) -> Callable:
    """Declare (and enforce) the access rule of a view: PUBLIC lets anyone in, every other rule
    needs a signed-in user, STAFF also staff (others get a 404). Object rules are declared and
    enforced together by ``models_app.access.model_route`` / ``version_route``."""

    def decorator(view: Callable) -> Callable:
        if rule == PUBLIC:
            wrapped = view
        elif rule == STAFF:
            wrapped = login_required(_staff_only(view))
        else:
            wrapped = login_required(view)

        @wraps(view)
        def inner(*args, **kwargs):
            return wrapped(*args, **kwargs)

        inner.access_rule = rule
        return inner

    return decorator


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern | URLResolver]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield route, entry
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def declared_rule(route: str, pattern: URLPattern | URLResolver) -> str | None:
    for prefix, rule in PREFIX_RULES.items():
        if route.startswith(prefix):
            return rule
    if isinstance(pattern, URLResolver):
        return "resolver"
    return getattr(pattern.callback, "access_rule", None)


def undeclared_routes(patterns) -> list[str]:
    """Routes whose view has no declared access rule (deny by default)."""
    return [route for route, p in _walk(patterns) if declared_rule(route, p) is None]


def all_routes(patterns) -> list[tuple[str, str]]:
    """Every concrete route with its rule, for the permission matrix."""
    return [
        (route, declared_rule(route, p))
        for route, p in _walk(patterns)
        if isinstance(p, URLPattern)
    ]
