"""The JSON the MLflow client parses strictly: field types, list shapes, empty replies."""

import pytest
from django.test import Client

from approvals.models import Alias
from models_app.models import ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


@pytest.fixture
def manager_client(owner):
    model = factories.registered_model(owner, "fraud-detector", description="d", tags={"t": "1"})
    v1 = factories.version(model, owner)
    factories.version(model, owner)
    Alias.objects.create(model=model, name="champion", version=v1)
    client = Client()
    client.force_login(owner)
    return client


def test_a_model_and_its_versions_have_mlflows_types(manager_client):
    model = manager_client.get(f"{API}/registered-models/get", {"name": "fraud-detector"}).json()[
        "registered_model"
    ]
    assert isinstance(model["creation_timestamp"], int)
    assert isinstance(model["last_updated_timestamp"], int)
    assert model["user_id"] == "owner"
    assert model["tags"] == [{"key": "t", "value": "1"}]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    latest = model["latest_versions"]
    assert [(v["version"], v["current_stage"]) for v in latest] == [("2", "None")]

    version = manager_client.get(
        f"{API}/model-versions/get", {"name": "fraud-detector", "version": "1"}
    ).json()["model_version"]
    assert version["version"] == "1"  # a string, or the client fails to parse
    assert version["status"] == "READY"
    assert version["current_stage"] == "None"
    assert version["aliases"] == ["champion"]
    assert version["source"] == "mlflow-artifacts:/registry/fraud-detector/1"
    assert version["description"] == "" and version["run_link"] == ""
    assert {"key": "registry.status", "value": "draft"} in version["tags"]


def test_latest_versions_answers_get_with_repeated_stage_keys(manager_client):
    version = ModelVersion.objects.get(number=1)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.ARCHIVED)
    response = manager_client.get(
        f"{API}/registered-models/get-latest-versions?name=fraud-detector&stages=archived&stages=None"
    )
    stages = [(v["current_stage"], v["version"]) for v in response.json()["model_versions"]]
    assert stages == [("None", "2"), ("Archived", "1")]


def test_empty_results_and_last_pages_leave_keys_out(manager_client):
    empty = manager_client.get(f"{API}/registered-models/search", {"filter": "name = 'none'"})
    assert empty.json() == {}
    last = manager_client.get(f"{API}/model-versions/search", {"max_results": "5"}).json()
    assert len(last["model_versions"]) == 2 and "next_page_token" not in last


def test_deletes_and_tag_calls_answer_an_empty_object(manager_client):
    for method, path, body in (
        (
            "post",
            "/registered-models/set-tag",
            {"name": "fraud-detector", "key": "k", "value": "v"},
        ),
        ("delete", "/registered-models/delete-tag", {"name": "fraud-detector", "key": "k"}),
        ("delete", "/model-versions/delete", {"name": "fraud-detector", "version": "2"}),
    ):
        response = getattr(manager_client, method)(
            API + path, body, content_type="application/json"
        )
        assert (response.status_code, response.json()) == (200, {})
