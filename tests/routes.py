"""Walking the URL resolver for the rule each route declares (core.rules): the permission
matrix checks every route, and a route without a rule fails the suite."""

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver

from core.rules import STAFF

# Routes whose views come from other packages, declared by their URL prefix.
PREFIX_RULES = {
    "admin/": STAFF,
}


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
