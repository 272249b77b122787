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


def search_models(client: Client) -> list[dict]:
    response = client.get(f"{API}/registered-models/search", {"max_results": "100"})
    assert response.status_code == 200
    return response.json()["registered_models"]


def test_a_page_of_models_reuses_the_answers_of_unchanged_models(owner_client, owner):
    other = factories.registered_model(owner, "churn-model")
    factories.version(other, owner)
    first = count_queries(lambda: search_models(owner_client))
    again = count_queries(lambda: search_models(owner_client))
    assert again < first
    # The page's entries are the answers of registered-models/get, from the same cache entries.
    by_name = {m["name"]: m for m in search_models(owner_client)}
    assert by_name["fraud-detector"] == get_model(owner_client)
    assert set(by_name) == {"fraud-detector", "churn-model"}


def test_a_page_of_models_shows_each_change_at_once(owner_client, owner):
    other = factories.registered_model(owner, "churn-model")
    factories.version(other, owner)
    search_models(owner_client)  # both cached now
    response = owner_client.post(
        f"{API}/registered-models/set-tag",
        {"name": "churn-model", "key": "team", "value": "retention"},
        content_type="application/json",
    )
    assert response.status_code == 200
    response = owner_client.post(
        f"{API}/registered-models/alias",
        {"name": "fraud-detector", "alias": "champ", "version": "1"},
        content_type="application/json",
    )
    assert response.status_code == 200
    by_name = {m["name"]: m for m in search_models(owner_client)}
    assert by_name["churn-model"]["tags"] == [{"key": "team", "value": "retention"}]
    assert by_name["fraud-detector"]["aliases"] == [{"alias": "champ", "version": "1"}]


def test_a_cached_page_lists_only_what_the_caller_may_view(owner_client, client_for, outsider):
    search_models(owner_client)  # the owner's private model is cached now
    mine = factories.registered_model(outsider, "outsiders-own")
    names = [m["name"] for m in search_models(client_for(outsider))]
    assert names == [mine.name]
