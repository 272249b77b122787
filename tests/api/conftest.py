"""Fixtures for the JSON API: personas with roles on one model, and clients that call the API
with a token (as pipelines do) or a session (as the dashboard's scripts would)."""

import pytest
from django.test import Client

from models_app.models import RegisteredModel
from tests import factories
from tests.models_app.test_register import use_local_storage


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    """Artifacts and upload spools in this test's own folders."""
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def promoter(db):
    return factories.user("promoter")


@pytest.fixture
def model(owner, editor, reviewer, promoter, viewer) -> RegisteredModel:
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    factories.grant(reviewer, m, "review")
    factories.grant(promoter, m, "promote")
    factories.grant(viewer, m, "view")
    return m


def good_version(model, actor, auc: float = 0.9, **extra):
    """A version that passes the default review gates."""
    return factories.version(
        model,
        actor,
        description="Retrained on Q1",
        metrics=[{"name": "auc", "value": auc, "split": "test"}],
        datasets=[{"name": "claims", "role": "train"}],
        files={"model.bin": f"weights-{auc}".encode()},
        **extra,
    )


def send(client: Client, method: str, url: str, data=None, **headers):
    """A JSON request (``data`` None: no body)."""
    import json

    body = "" if data is None else json.dumps(data)
    return client.generic(
        method.upper(), url, body, content_type="application/json", headers=headers or None
    )


def error_of(response) -> dict:
    """The error body every API error has."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]
