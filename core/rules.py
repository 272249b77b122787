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
from django.urls import URLPattern, URLResolver

PUBLIC = "public"  # anyone, signed in or not (login page, /healthz)
LOGIN = "login"  # any signed-in user; what they see is scoped to them
STAFF = "staff"  # the Django admin's own rule
# Object rules: signed in, and the view fetches its model through models_app.access with the
# named role (404 for those who may not view it, 403 for viewers without the role).
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


def access(rule: str) -> Callable:
    """Declare (and enforce) the access rule of a view."""

    def decorator(view: Callable) -> Callable:
        wrapped = view if rule == PUBLIC else login_required(view)

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
