"""Every route declares an access rule; a route without one fails this test (deny by default)."""

from django.http import HttpResponse
from django.urls import get_resolver, include, path

from core.rules import LOGIN, access
from tests.routes import all_routes, undeclared_routes


def test_every_route_declares_an_access_rule():
    missing = undeclared_routes(get_resolver().url_patterns)
    assert missing == [], f"routes with no declared access rule: {missing}"


def _undeclared_view(request):
    return HttpResponse("oops")


@access(LOGIN)
def _declared_view(request):
    return HttpResponse("fine")


def test_walk_reports_a_route_without_a_rule_even_when_nested():
    patterns = [
        path("fine/", _declared_view),
        path("nested/", include([path("oops/", _undeclared_view)])),
    ]
    assert undeclared_routes(patterns) == ["nested/oops/"]


def test_all_routes_lists_each_concrete_route_with_its_rule():
    patterns = [path("fine/", _declared_view)]
    assert all_routes(patterns) == [("fine/", LOGIN)]


def test_declared_rule_is_enforced_for_anonymous(rf):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/fine/")
    request.user = AnonymousUser()
    assert _declared_view(request).status_code == 302
