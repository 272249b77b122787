"""Registered models through the API: the same rules as the dashboard, through the same
services."""

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from models_app import summary
from models_app.access import Role, roles_for
from models_app.models import ModelTag, ModelVersion, RegisteredModel
from tests import factories
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db


def test_pipeline_creates_a_model_and_becomes_its_manager(api_client, owner):
    response = send(
        api_client(owner),
        "post",
        "/api/v1/models",
        {
            "name": "Fraud Detector",
            "description": "Scores card payments.",
            "task": "classification",
            "visibility": "internal",
            "tags": {"team": "risk"},
            "metric_directions": {"latency": False},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Fraud Detector"
    assert body["slug"] == "fraud-detector"
    assert body["tags"] == {"team": "risk"}
    assert body["your_roles"] == ["view", "edit", "review", "promote", "manage"]
    assert body["url"] == "http://testserver/api/v1/models/fraud-detector"
    model = RegisteredModel.objects.get()
    assert roles_for(owner, model) == set(Role)
    assert not model.higher_is_better("latency")
    assert AuditEvent.objects.filter(action="model.created", actor=owner).count() == 1


def test_a_name_too_close_to_an_existing_one_is_409(api_client, owner, model):
    response = send(api_client(owner), "post", "/api/v1/models", {"name": "FRAUD"})
    assert response.status_code == 409
    assert error_of(response)["field"] == "name"
    assert "taken" in error_of(response)["message"]
    assert RegisteredModel.objects.count() == 1


def test_team_must_be_one_of_yours(api_client, owner):
    Group.objects.create(name="strangers")
    factories.team("risk", owner)
    c = api_client(owner)
    refused = send(c, "post", "/api/v1/models", {"name": "a", "team": "strangers"})
    assert refused.status_code == 400
    assert error_of(refused)["field"] == "team"
    assert not RegisteredModel.objects.exists()
    accepted = send(c, "post", "/api/v1/models", {"name": "a", "team": "risk"})
    assert accepted.status_code == 201
    assert accepted.json()["team"] == "risk"


def test_model_is_found_by_name_or_slug(api_client, owner):
    factories.registered_model(owner, "Fraud Detector")
    c = api_client(owner)
    for address in ("Fraud%20Detector", "fraud-detector", "FRAUD_detector"):
        response = c.get(f"/api/v1/models/{address}")
        assert response.status_code == 200, address
        assert response.json()["name"] == "Fraud Detector"


def test_model_detail_says_your_roles_aliases_and_version_counts(api_client, viewer, model):
    factories.version(model, model.owner)
    body = api_client(viewer).get("/api/v1/models/fraud").json()
    assert body["your_roles"] == ["view"]
    assert body["versions_by_status"]["draft"] == 1
    assert body["latest_version"] == 1
    assert body["aliases"] == {}


# ---------------------------------------------------------------------------------------------
# The list


def test_list_shows_only_models_you_may_view(api_client, owner, outsider):
    factories.registered_model(owner, "private-one")
    factories.registered_model(owner, "internal-one", visibility="internal")
    names = [m["name"] for m in api_client(outsider).get("/api/v1/models").json()["items"]]
    assert names == ["internal-one"]


def test_list_filters_like_the_dashboard(api_client, owner):
    team = factories.team("risk", owner)
    a = factories.registered_model(owner, "alpha", tags={"stage": "prod"}, team=team)
    b = factories.registered_model(owner, "beta", task="regression", description="churn model")
    factories.version(a, owner, framework="sklearn")
    factories.version(b, owner, framework="torch")
    c = api_client(owner)

    def names(query: str) -> list[str]:
        response = c.get(f"/api/v1/models?{query}")
        assert response.status_code == 200, response.content
        return [m["name"] for m in response.json()["items"]]

    assert names("q=churn") == ["beta"]
    assert names("tag=stage=prod") == ["alpha"]
    assert names("tag=stage") == ["alpha"]
    assert names("team=risk") == ["alpha"]
    assert names("task=regression") == ["beta"]
    assert names("framework=TORCH") == ["beta"]
    assert names("owner=owner") == ["alpha", "beta"]
    assert names("status=draft") == ["alpha", "beta"]
    assert names("status=approved") == []
    assert names("sort=-created_at") == ["beta", "alpha"]


def test_list_pages_with_a_next_link(api_client, owner):
    for i in range(5):
        factories.registered_model(owner, f"m{i}")
    c = api_client(owner)
    first = c.get("/api/v1/models?limit=2").json()
    assert [m["name"] for m in first["items"]] == ["m0", "m1"]
    assert first["count"] == 5
    assert first["next"] == "http://testserver/api/v1/models?limit=2&page=2"
    third = c.get("/api/v1/models?limit=2&page=3").json()
    assert [m["name"] for m in third["items"]] == ["m4"]
    assert third["next"] is None
    assert c.get("/api/v1/models?limit=2&page=9").json()["items"] == []


def test_list_does_a_constant_number_of_queries(api_client, owner, assert_constant_queries):
    c = api_client(owner)
    for i in range(3):
        model = factories.registered_model(owner, f"seed-{i}", tags={"k": "v"})
        factories.version(model, owner)

    def grow():
        models = RegisteredModel.objects.bulk_create(
            RegisteredModel(
                name=f"bulk-{i}", name_key=f"bulk-{i}", slug=f"bulk-{i}", owner=owner,
                visibility="internal",
            )
            for i in range(300)
        )  # fmt: skip
        ModelTag.objects.bulk_create(ModelTag(model=m, key="k", value="v") for m in models)
        ModelVersion.objects.bulk_create(
            ModelVersion(model=m, number=1, created_by=owner) for m in models
        )
        summary.recompute(m.pk for m in models)

    def request():
        response = c.get("/api/v1/models?limit=200")
        assert response.status_code == 200

    queries = assert_constant_queries(request, grow)
    assert queries <= 8


# ---------------------------------------------------------------------------------------------
# Changing and deleting


def test_manager_updates_only_the_fields_given(api_client, owner, model):
    response = send(
        api_client(owner),
        "patch",
        "/api/v1/models/fraud",
        {"description": "New words.", "tags": {"a": "1"}},
    )
    assert response.status_code == 200
    model.refresh_from_db()
    assert model.description == "New words."
    assert model.visibility == "private"
    assert dict(model.tags.values_list("key", "value")) == {"a": "1"}
    event = AuditEvent.objects.filter(action="model.updated").get()
    assert event.after == {"description": "New words.", "tags": {"a": "1"}}


def test_renaming_keeps_the_model_reachable_by_its_new_name(api_client, owner, model):
    c = api_client(owner)
    assert send(c, "patch", "/api/v1/models/fraud", {"name": "Fraud v2"}).status_code == 200
    assert c.get("/api/v1/models/fraud-v2").json()["name"] == "Fraud v2"
    assert c.get("/api/v1/models/fraud").status_code == 404


@pytest.mark.parametrize("field", ["status", "created_by", "owner", "slug", "number"])
def test_protected_fields_in_an_update_are_400_and_never_applied(api_client, owner, model, field):
    before = AuditEvent.objects.count()
    response = send(
        api_client(owner), "patch", "/api/v1/models/fraud", {field: "x", "description": "sneaky"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == field
    assert error["message"] == (
        f"{field} is set by the registry and cannot be changed through the API."
    )
    model.refresh_from_db()
    assert model.description == ""
    assert AuditEvent.objects.exclude(action="token.created").count() == before


def test_null_for_a_required_field_is_400(api_client, owner, model):
    response = send(api_client(owner), "patch", "/api/v1/models/fraud", {"name": None})
    assert response.status_code == 400
    assert error_of(response)["field"] == "name"


def test_delete_needs_manage_and_removes_the_model(api_client, owner, editor, model):
    refused = api_client(editor).delete("/api/v1/models/fraud")
    assert refused.status_code == 403
    assert RegisteredModel.objects.filter(pk=model.pk).exists()
    response = api_client(owner).delete("/api/v1/models/fraud?reason=retired")
    assert response.status_code == 204
    assert not RegisteredModel.objects.filter(pk=model.pk).exists()
    assert AuditEvent.objects.get(action="model.deleted").reason == "retired"
