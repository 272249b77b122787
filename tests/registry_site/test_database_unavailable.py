"""A database that is down or dropped the connection answers 503 with a plain message and a
Retry-After, on the JSON API, the MLflow API and the pages; never a 500 (issue 15, F7)."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client

from core.errors import DATABASE_UNAVAILABLE
from registry_site import middleware
from registry_site.api import routes_models
from registry_site.tokens import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(owner) -> str:
    return token_create(actor=owner, user=owner, name="ci", scope="write")[1]


def down(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")


def dropped(*args, **kwargs):
    raise InterfaceError("connection already closed")


@pytest.mark.parametrize("error", [down, dropped])
def test_the_api_answers_503_when_the_database_fails_in_an_operation(monkeypatch, token, error):
    monkeypatch.setattr(routes_models.services, "model_create", error)
    response = Client().post(
        "/api/v1/models", {"name": "fraud"}, "application/json",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json() == {"error": {"code": "unavailable", "message": DATABASE_UNAVAILABLE}}
    assert response["Retry-After"] == "5"


def test_the_api_answers_503_when_the_token_lookup_fails(monkeypatch, token):
    monkeypatch.setattr(middleware, "authenticate_token", down)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


def test_the_mlflow_api_answers_503_in_its_own_error_format(monkeypatch, token):
    monkeypatch.setattr(middleware, "authenticate_token", down)
    client = Client(raise_request_exception=False)
    response = client.get(
        "/api/2.0/mlflow/registered-models/search", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 503
    assert response.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": DATABASE_UNAVAILABLE,
    }


def test_a_page_answers_503_in_plain_text(monkeypatch, owner):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    monkeypatch.setattr(SessionStore, "load", down)
    response = client.get("/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == DATABASE_UNAVAILABLE


def test_other_errors_are_still_a_500(monkeypatch, owner):
    client = Client(raise_request_exception=False)
    client.force_login(owner)

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(SessionStore, "load", bug)
    assert client.get("/").status_code == 500
