"""MLflow read answers are kept per worker until their model changes (mlflow_compat/cache.py)."""

import pytest
from django.test import Client

from tests import factories
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


@pytest.fixture
def owner_client(owner) -> Client:
    model = factories.registered_model(owner, "fraud-detector")
    factories.version(model, owner)
    client = Client()
    client.force_login(owner)
    return client


def get_model(client: Client) -> dict:
    response = client.get(f"{API}/registered-models/get", {"name": "fraud-detector"})
    assert response.status_code == 200
    return response.json()["registered_model"]


def test_a_repeated_read_is_answered_from_the_cache(owner_client):
    first = count_queries(lambda: get_model(owner_client))
    again = count_queries(lambda: get_model(owner_client))
    assert again < first
    assert get_model(owner_client) == get_model(owner_client)


def test_every_change_through_the_api_is_seen_at_once(owner_client):
    assert get_model(owner_client).get("aliases") is None
    version = lambda: owner_client.get(  # noqa: E731
        f"{API}/model-versions/get", {"name": "fraud-detector", "version": "1"}
    ).json()["model_version"]
    assert version()["description"] == ""

    steps = [
        ("/registered-models/set-tag", {"name": "fraud-detector", "key": "k", "value": "v"}),
        ("/registered-models/alias", {"name": "fraud-detector", "alias": "champ", "version": "1"}),
        ("/model-versions/update", {"name": "fraud-detector", "version": "1", "description": "x"}),
    ]
    for path, body in steps:
        method = owner_client.patch if path.endswith("update") else owner_client.post
        response = method(f"{API}{path}", body, content_type="application/json")
        assert response.status_code == 200, response.content
    model = get_model(owner_client)
    assert model["tags"] == [{"key": "k", "value": "v"}]
    assert model["aliases"] == [{"alias": "champ", "version": "1"}]
    assert version()["description"] == "x"
    assert version()["aliases"] == ["champ"]


def test_the_cache_checks_access_first(owner_client, client_for, outsider):
    get_model(owner_client)  # cached now
    response = client_for(outsider).get(f"{API}/registered-models/get", {"name": "fraud-detector"})
    assert response.status_code == 404


def test_zero_seconds_turns_the_cache_off(owner_client, settings):
    settings.REGISTRY_MLFLOW_CACHE_SECONDS = 0
    first = count_queries(lambda: get_model(owner_client))
    assert count_queries(lambda: get_model(owner_client)) == first
