"""The MLflow searches do the same number of queries for 3 rows as for 300."""

import pytest
from django.test import Client

from approvals.models import Alias
from models_app import summary
from models_app.models import ModelTag, ModelVersion, RegisteredModel, VersionTag
from models_app.names import name_key
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


@pytest.fixture
def signed_in(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


def grow_models(owner, count: int) -> None:
    """``count`` internal models, each with tags, three versions (one archived, one approved
    holding production and an ordinary alias)."""
    start = RegisteredModel.objects.count()
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"bulk-{start + i:04d}", name_key=name_key(f"bulk-{start + i:04d}"),
            slug=name_key(f"bulk-{start + i:04d}"), owner=owner,
            visibility=RegisteredModel.Visibility.INTERNAL, next_version_number=4,
        )
        for i in range(count)
    )  # fmt: skip
    ModelTag.objects.bulk_create(
        ModelTag(model=m, key=k, value="v") for m in models for k in ("team", "domain")
    )
    S = ModelVersion.Status
    versions = ModelVersion.objects.bulk_create(
        ModelVersion(model=m, number=n, created_by=owner, status=status)
        for m in models
        for n, status in ((1, S.ARCHIVED), (2, S.APPROVED), (3, S.DRAFT))
    )
    VersionTag.objects.bulk_create(VersionTag(version=v, key="k", value="v") for v in versions)
    summary.recompute(m.pk for m in models)
    Alias.objects.bulk_create(
        Alias(model=v.model, name=name, version=v, protected=name == "production")
        for v in versions
        if v.number == 2
        for name in ("production", "champion")
    )


def test_search_registered_models_is_constant(signed_in, owner, assert_constant_queries):
    grow_models(owner, 3)

    def request():
        response = signed_in.get(f"{API}/registered-models/search?max_results=1000")
        assert response.status_code == 200
        return response

    count = assert_constant_queries(request, lambda: grow_models(owner, 297))
    body = request().json()["registered_models"]
    assert len(body) == 300
    stages = {v["current_stage"]: v["version"] for v in body[0]["latest_versions"]}
    assert stages == {"None": "3", "Production": "2", "Archived": "1"}
    assert body[0]["aliases"] == [
        {"alias": "champion", "version": "2"},
        {"alias": "production", "version": "2"},
    ]
    assert count <= 10, count  # 8 when measured: session, user, models, tags, aliases, ...


def test_search_model_versions_is_constant(signed_in, owner, assert_constant_queries):
    grow_models(owner, 1)

    def request():
        response = signed_in.get(f"{API}/model-versions/search?max_results=1000")
        assert response.status_code == 200
        return response

    count = assert_constant_queries(request, lambda: grow_models(owner, 100))
    assert len(request().json()["model_versions"]) == 303
    assert count <= 7, count  # 5 when measured


@pytest.fixture
def big(owner, viewer):
    """A model the viewer may see, with one version, and how to give it 300 more (written
    directly, as a shortcut: no audit events)."""
    model = factories.registered_model(owner, "big")
    factories.grant(viewer, model, "view")
    factories.version(model, owner)

    def grow():
        ModelVersion.objects.bulk_create(
            ModelVersion(model=model, number=n, created_by=owner) for n in range(2, 302)
        )
        summary.recompute([model.pk])

    return grow


def test_a_model_with_many_versions_is_read_in_constant_queries(
    signed_in, big, assert_constant_queries, settings
):
    # The growth writes no audit event, so the answer cache would hide it: measure without.
    settings.REGISTRY_MLFLOW_CACHE_SECONDS = 0

    def request():
        response = signed_in.get(f"{API}/registered-models/get?name=big")
        assert response.status_code == 200

    assert_constant_queries(request, big)


def test_searching_the_versions_of_one_model_is_constant(signed_in, big, assert_constant_queries):
    def request():
        response = signed_in.get(f"{API}/model-versions/search?filter=name%3D%27BIG%27")
        assert response.status_code == 200
        return response

    count = assert_constant_queries(request, big)
    assert len(request().json()["model_versions"]) == 301
    assert count <= 7, count


def test_searching_the_versions_of_a_hidden_model_finds_nothing(signed_in, outsider):
    hidden = factories.registered_model(outsider, "hidden")
    factories.version(hidden, outsider)
    for query in ("filter=name%3D%27hidden%27", "filter=name%3D%27nothing-here%27"):
        response = signed_in.get(f"{API}/model-versions/search?{query}")
        assert response.status_code == 200
        assert response.json() == {}
