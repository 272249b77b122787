"""Authentication and the error contract: every refusal is a JSON error with the status that
says what went wrong, and a refused request changes nothing."""

import json

import pytest
from django.test import Client

from audit.models import AuditEvent
from models_app.models import RegisteredModel
from registry_site.api.models import IdempotencyKey
from tests import factories
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db


def test_anonymous_caller_gets_401_with_a_json_error(client):
    response = client.get("/api/v1/models")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthenticated"


def test_anonymous_post_is_401_not_a_csrf_failure(model):
    response = send(Client(enforce_csrf_checks=True), "post", "/api/v1/models", {"name": "x"})
    assert response.status_code == 401
    assert RegisteredModel.objects.count() == 1


def test_invalid_token_gets_401(client):
    response = client.get("/api/v1/models", headers={"Authorization": "Bearer mrt_nope_nope"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_read_only_token_reads_but_cannot_post(api_client, owner, model):
    reader = api_client(owner, scope="read")
    assert reader.get("/api/v1/models/fraud").status_code == 200
    response = send(reader, "post", "/api/v1/models", {"name": "second"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "read_only_token"
    assert not RegisteredModel.objects.filter(name="second").exists()


def test_session_write_without_csrf_token_is_refused(owner, model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    response = send(browser, "post", "/api/v1/models", {"name": "second"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"
    assert not RegisteredModel.objects.filter(name="second").exists()


def test_session_write_with_csrf_token_is_accepted(owner, model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    browser.get("/models/")  # sets the CSRF cookie, as the dashboard does
    token = browser.cookies["csrftoken"].value
    response = send(browser, "post", "/api/v1/models", {"name": "second"}, X_CSRFToken=token)
    assert response.status_code == 201, response.content
    assert RegisteredModel.objects.filter(name="second").exists()


def test_token_write_needs_no_csrf_token(owner):
    from registry_site.tokens import token_create

    _, secret = token_create(actor=owner, user=owner, name="ci", scope="write")
    pipeline = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})
    assert send(pipeline, "post", "/api/v1/models", {"name": "fraud"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 12}, "name"),
        ({"name": "x", "tags": ["a", "b"]}, "tags"),
        ({"name": "x", "tags": {"a": 1}}, "tags.a"),
        ({"name": "x", "visibility": "public"}, "visibility"),
        ({"name": "x", "description": None}, "description"),
        ({"name": True}, "name"),
        ({"name": "x", "metric_directions": {"auc": "yes"}}, "metric_directions.auc"),
    ],
)
def test_wrong_json_types_are_400_naming_the_field(api_client, owner, body, field):
    response = send(api_client(owner), "post", "/api/v1/models", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["field"] == field
    assert field in error["message"] or "Input should" in error["message"]
    assert not RegisteredModel.objects.exists()


def test_unknown_fields_are_400_and_nothing_is_created(api_client, owner):
    response = send(api_client(owner), "post", "/api/v1/models", {"name": "x", "colour": "red"})
    assert response.status_code == 400
    assert error_of(response) | {"details": None} == {
        "code": "validation_error",
        "message": "Unknown field 'colour'.",
        "field": "colour",
        "details": None,
    }
    assert not RegisteredModel.objects.exists()


def test_malformed_json_is_400(api_client, owner):
    response = api_client(owner).post(
        "/api/v1/models", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"
    assert not RegisteredModel.objects.exists()


def test_nan_is_not_json(api_client, owner, model):
    pipeline = api_client(owner)
    before = AuditEvent.objects.count()
    response = pipeline.post(
        "/api/v1/models/fraud/versions",
        '{"metrics": {"auc": NaN}}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert model.versions.count() == 0
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_text_a_database_cannot_store_is_400_not_500(api_client, owner, text):
    body = json.dumps({"name": "fine", "description": text})
    response = api_client(owner).post("/api/v1/models", body, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["field"] == "description"
    assert not RegisteredModel.objects.exists()


def test_nul_in_the_address_is_400(api_client, owner, model):
    response = api_client(owner).get("/api/v1/models?q=a%00b")
    assert response.status_code == 400
    assert "NUL" in error_of(response)["message"]


@pytest.mark.parametrize("limit", ["100000", "201", "0", "-1", "many"])
def test_oversized_or_invalid_page_size_is_400(api_client, owner, model, limit):
    response = api_client(owner).get(f"/api/v1/models?limit={limit}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == "limit"
    if limit in ("100000", "201"):
        assert error["message"] == "limit must be at most 200."


def test_a_path_value_of_the_wrong_type_is_a_404_like_a_missing_object(api_client, owner, model):
    response = api_client(owner).get("/api/v1/models/fraud/versions/abc")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_a_json_405_with_allow(api_client, owner):
    response = api_client(owner).delete("/api/v1/models")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}


def test_outsider_gets_the_same_404_as_for_a_missing_model(api_client, outsider, model):
    factories.version(model, model.owner)
    c = api_client(outsider)
    for hidden, missing in [
        ("/api/v1/models/fraud", "/api/v1/models/nope"),
        ("/api/v1/models/fraud/versions/1", "/api/v1/models/nope/versions/1"),
        ("/api/v1/models/fraud/versions/1/files", "/api/v1/models/nope/versions/1/files"),
    ]:
        a, b = c.get(hidden), c.get(missing)
        assert a.status_code == b.status_code == 404
        assert a.content == b.content


def test_viewer_lacking_the_role_gets_403(api_client, viewer, model):
    response = send(api_client(viewer), "patch", "/api/v1/models/fraud", {"description": "x"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    model.refresh_from_db()
    assert model.description == ""


def test_idempotency_keys_are_not_created_by_refused_requests(api_client, viewer, model):
    response = send(
        api_client(viewer),
        "post",
        "/api/v1/models/fraud/versions",
        {},
        **{"Idempotency-Key": "k1"},
    )
    assert response.status_code == 403
    assert not IdempotencyKey.objects.exists()
