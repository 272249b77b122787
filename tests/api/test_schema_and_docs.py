"""The OpenAPI 3.1 schema and the server-rendered docs page (no CDN: the CSP forbids it)."""

import json
import re

import pytest
from django.urls import get_resolver
from ninja import NinjaAPI

from registry_site.api.api import api
from tests.routes import all_routes

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_1_and_documents_every_route(api_client, viewer):
    response = api_client(viewer).get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"] == "3.1.0"
    documented = {re.sub(r"\{[^}]+\}", "*", p) for p in schema["paths"]}
    routes = {
        "/" + re.sub(r"<[^>]+>", "*", route)
        for route, _ in all_routes(get_resolver().url_patterns)
        if route.startswith("api/v1/")
        and route not in ("api/v1/", "api/v1/openapi.json", "api/v1/docs")  # fmt: skip
    }
    assert routes == documented
    create = schema["paths"]["/api/v1/models"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert {"BearerToken", "Session"} <= set(schema["components"]["securitySchemes"])


def test_schema_is_built_once_per_process_and_is_the_same_for_every_caller(
    api_client, client_for, viewer, outsider
):
    assert api.get_openapi_schema() is api.get_openapi_schema()
    by_token = api_client(viewer).get("/api/v1/openapi.json")
    by_session = client_for(outsider).get("/api/v1/openapi.json")
    assert by_token.status_code == by_session.status_code == 200
    assert by_token.content == by_session.content
    assert by_token.json() == json.loads(json.dumps(NinjaAPI.get_openapi_schema(api)))  # fresh


def test_schema_and_root_need_a_signed_in_caller(client):
    for url in ("/api/v1/openapi.json", "/api/v1/"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "unauthenticated"


def test_root_points_at_the_schema_and_the_docs(api_client, viewer):
    assert api_client(viewer).get("/api/v1/").json() == {
        "openapi": "http://testserver/api/v1/openapi.json",
        "docs": "http://testserver/api/v1/docs",
    }


def test_docs_page_lists_operations_without_outside_scripts(client_for, viewer):
    response = client_for(viewer).get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/models/{name}/aliases/{alias}/resolve" in html
    assert "Idempotency-Key" in html
    assert "cdn" not in html.lower()
    assert all(src.startswith("/static/") for src in re.findall(r'<script[^>]+src="([^"]+)"', html))
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_docs_page_sends_anonymous_visitors_to_sign_in(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
