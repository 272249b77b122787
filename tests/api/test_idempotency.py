"""Idempotency-Key on creates: a retry after a lost answer gets the first answer, not a second
object; reusing a key for another request is a 422."""

import json
from datetime import timedelta

import pytest
from django.db import connection  # noqa: F401 (used by the skipif condition)
from django.test import Client
from django.utils import timezone

from approvals.models import Comment
from models_app.models import Dataset, ModelVersion, RegisteredModel
from registry_site.api.models import IdempotencyKey
from registry_site.tokens import token_create
from tests import factories
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db

KEY = {"Idempotency-Key": "6f1c2a8e-9d1b-4b5e-8a43-0c7d2f9e1a11"}


def test_a_retry_returns_the_first_answer_and_creates_nothing(api_client, owner):
    c = api_client(owner)
    first = send(c, "post", "/api/v1/models", {"name": "fraud"}, **KEY)
    again = send(c, "post", "/api/v1/models", {"name": "fraud"}, **KEY)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert RegisteredModel.objects.count() == 1


def test_the_same_document_serialised_differently_is_the_same_request(api_client, owner):
    c = api_client(owner)
    one = c.post("/api/v1/models", '{"name": "fraud", "task": "ranking"}',
                 content_type="application/json", headers=KEY)  # fmt: skip
    two = c.post("/api/v1/models", '{ "task" : "ranking",\n "name":"fraud" }',
                 content_type="application/json", headers=KEY)  # fmt: skip
    assert one.status_code == two.status_code == 201
    assert RegisteredModel.objects.count() == 1


def test_the_same_key_with_another_body_is_422_and_creates_nothing(api_client, owner):
    c = api_client(owner)
    assert send(c, "post", "/api/v1/models", {"name": "fraud"}, **KEY).status_code == 201
    response = send(c, "post", "/api/v1/models", {"name": "churn"}, **KEY)
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["fraud"]


def test_the_same_key_on_another_path_is_422(api_client, owner, model):
    c = api_client(owner)
    assert send(c, "post", "/api/v1/models", {"name": "x"}, **KEY).status_code == 201
    response = send(c, "post", "/api/v1/datasets", {"name": "x"}, **KEY)
    assert response.status_code == 422
    assert not Dataset.objects.exists()


def test_keys_belong_to_their_user(api_client, owner, editor):
    assert (
        send(api_client(owner), "post", "/api/v1/models", {"name": "a"}, **KEY).status_code == 201
    )
    other = send(api_client(editor), "post", "/api/v1/models", {"name": "b"}, **KEY)
    assert other.status_code == 201
    assert other.json()["name"] == "b"
    assert RegisteredModel.objects.count() == 2


def test_a_failed_request_does_not_use_up_its_key(api_client, owner):
    c = api_client(owner)
    refused = send(c, "post", "/api/v1/models", {"name": "fraud", "task": "magic"}, **KEY)
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = send(c, "post", "/api/v1/models", {"name": "fraud"}, **KEY)
    assert fixed.status_code == 201


def test_keys_expire_after_24_hours(api_client, owner, django_capture_on_commit_callbacks):
    c = api_client(owner)
    assert send(c, "post", "/api/v1/models", {"name": "a"}, **KEY).status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    again = send(c, "post", "/api/v1/models", {"name": "a"}, **KEY)
    assert again.status_code == 409  # run again: the name is now taken
    assert "taken" in error_of(again)["message"]
    assert not IdempotencyKey.objects.exists()  # the expired one was cleared


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
def test_a_malformed_key_is_400(api_client, owner, key):
    response = send(api_client(owner), "post", "/api/v1/models", {"name": "a"},
                    **{"Idempotency-Key": key})  # fmt: skip
    assert response.status_code == 400
    assert error_of(response)["field"] == "Idempotency-Key"
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize(
    ("url", "body", "table"),
    [
        ("/api/v1/models/fraud/versions", {"description": "v"}, ModelVersion),
        ("/api/v1/datasets", {"name": "claims"}, Dataset),
        ("/api/v1/models/fraud/versions/1/comments", {"body": "hello"}, Comment),
    ],
)
def test_every_create_is_idempotent(api_client, owner, model, url, body, table):
    factories.version(model, owner)
    before = table.objects.count()
    c = api_client(owner)
    first = send(c, "post", url, body, **KEY)
    second = send(c, "post", url, body, **KEY)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert table.objects.count() == before + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers")
def test_two_requests_with_one_key_at_once_create_one_model():
    from tests.concurrency import run_at_once

    owner = factories.user("owner")
    _, secret = token_create(actor=owner, user=owner, name="ci", scope="write")

    def call(i: int):
        c = Client(headers={"Authorization": f"Bearer {secret}", **KEY})
        response = c.post("/api/v1/models", json.dumps({"name": "fraud"}),
                          content_type="application/json")  # fmt: skip
        return response.status_code, response.json()

    results = run_at_once(8, call)
    assert all(not isinstance(r, Exception) for r in results), results
    # Those that arrive while the first runs are told so (409), the later ones get its answer.
    assert {status for status, _ in results} <= {201, 409}
    created = [body for status, body in results if status == 201]
    assert created and len({json.dumps(body, sort_keys=True) for body in created}) == 1
    assert all(
        body["error"]["code"] == "idempotency_in_progress"
        for status, body in results
        if status == 409
    )
    assert RegisteredModel.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


DEEP = "[" * 100_000


def counts() -> tuple:
    return RegisteredModel.objects.count(), ModelVersion.objects.count(), Dataset.objects.count()


@pytest.mark.parametrize("headers", [{}, KEY], ids=["plain", "idempotent"])
@pytest.mark.parametrize(
    "path", ["/api/v1/models", "/api/v1/models/fraud/versions", "/api/v1/datasets"]
)
def test_deeply_nested_json_is_a_400_and_changes_nothing(api_client, owner, model, path, headers):
    """The body is hashed for the key and parsed by the API: neither may recurse into a 500
    (which the client retries); the claim on the key is not kept."""
    c = api_client(owner)
    before = (
        RegisteredModel.objects.count(),
        ModelVersion.objects.count(),
        Dataset.objects.count(),
    )
    for body in (DEEP, "[" * 70 + "]" * 70, '{"name": ' + "[" * 3000 + "]" * 3000 + "}"):
        response = c.post(path, body, content_type="application/json", headers=headers)
        assert response.status_code == 400, response.content
        error = error_of(response)
        assert error["code"] == "malformed_json"
        assert "nested too deeply" in error["message"]
    assert counts() == before
    assert not IdempotencyKey.objects.exists()
