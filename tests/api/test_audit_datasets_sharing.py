"""The audit log, datasets and sharing through the API: the same visibility as the dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from models_app import services
from models_app.access import Role, roles_for
from models_app.models import Dataset, ModelVersion
from tests import factories
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------------
# Audit


def test_audit_shows_only_events_of_models_you_may_view(api_client, owner, outsider, superuser):
    factories.registered_model(owner, "secret")
    factories.registered_model(owner, "open", visibility="internal")
    seen = api_client(outsider).get("/api/v1/audit").json()
    assert {e["model"] for e in seen["items"]} == {"open"}
    everything = api_client(superuser).get("/api/v1/audit").json()
    assert {"secret", "open"} <= {e["model"] for e in everything["items"]}


def test_audit_filters_by_model_actor_action_and_time(api_client, owner, editor, model):
    factories.version(model, editor)
    factories.registered_model(owner, "other")
    c = api_client(owner)

    def actions(query: str) -> list[str]:
        response = c.get(f"/api/v1/audit?{query}")
        assert response.status_code == 200, response.content
        return [e["action"] for e in response.json()["items"]]

    assert actions("model=fraud&action=version.") == ["version.created"]
    assert actions("actor=editor") == ["version.created"]
    assert set(actions("model=FRAUD")) == {"model.created", "version.created"}
    assert actions("action=model.created&model=other") == ["model.created"]
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert actions(f"since={tomorrow}") == []
    assert "model.created" in actions(f"until={tomorrow}")
    newest = c.get("/api/v1/audit?limit=1").json()["items"][0]
    assert newest["seq"] == AuditEvent.objects.filter(model__isnull=False).order_by("-seq")[0].seq


def test_a_bad_date_in_the_audit_filter_is_400(api_client, owner):
    response = api_client(owner).get("/api/v1/audit?since=last-tuesday")
    assert response.status_code == 400
    assert error_of(response)["field"] == "since"


# ---------------------------------------------------------------------------------------------
# Datasets


def test_datasets_are_created_listed_and_read(api_client, viewer):
    c = api_client(viewer)
    created = send(c, "post", "/api/v1/datasets",
                   {"name": "claims-2026", "uri": "s3://data/claims", "row_count": 10})  # fmt: skip
    assert created.status_code == 201
    assert created.json()["created_by"] == "viewer"
    listed = c.get("/api/v1/datasets?q=claims").json()
    assert [d["name"] for d in listed["items"]] == ["claims-2026"]
    detail = c.get(f"/api/v1/datasets/{created.json()['id']}").json()
    assert detail["uri"] == "s3://data/claims"
    assert detail["versions"] == {"items": [], "next": None, "previous": None}


def test_a_dataset_name_is_unique(api_client, viewer):
    c = api_client(viewer)
    assert send(c, "post", "/api/v1/datasets", {"name": "claims"}).status_code == 201
    again = send(c, "post", "/api/v1/datasets", {"name": "claims"})
    assert again.status_code == 400
    assert error_of(again)["field"] == "name"
    assert Dataset.objects.count() == 1


def test_a_dataset_lists_only_versions_you_may_view(api_client, owner, outsider):
    secret = factories.registered_model(owner, "secret")
    shown = factories.registered_model(owner, "shown", visibility="internal")
    for model in (secret, shown):
        factories.version(model, owner, datasets=[{"name": "claims", "role": "train"}])
    dataset = Dataset.objects.get()
    body = api_client(outsider).get(f"/api/v1/datasets/{dataset.pk}").json()
    assert body["versions"]["items"] == [
        {"model": "shown", "number": 1, "status": "draft", "role": "train"}
    ]
    assert body["versions"]["next"] is None
    assert api_client(outsider).get("/api/v1/datasets/999999").status_code == 404


def test_a_version_naming_a_known_dataset_with_another_uri_is_refused(
    api_client, editor, outsider, model
):
    """Issue 15, finding 7: the name does not link to someone else's record."""
    services.dataset_create(actor=outsider, name="claims", uri="s3://evil/claims")
    response = send(api_client(editor), "post", "/api/v1/models/fraud/versions",
                    {"datasets": [{"name": "claims", "uri": "s3://real/claims"}]})  # fmt: skip
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == "datasets[0].uri"
    assert "Dataset 'claims' is registered with URI 's3://evil/claims'" in error["message"]
    assert not model.versions.exists()


def test_the_owner_patches_a_dataset(api_client, owner):
    team = factories.team("data", owner)
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://typo")
    response = send(api_client(owner), "patch", f"/api/v1/datasets/{dataset.pk}",
                    {"uri": "s3://data/claims", "team": "data"})  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["uri"], body["team"], body["description"]) == ("s3://data/claims", "data", "")
    dataset.refresh_from_db()
    assert (dataset.uri, dataset.team) == ("s3://data/claims", team)
    event = AuditEvent.objects.get(action="dataset.updated")
    assert event.after == {"uri": "s3://data/claims", "team": "data"}


def test_others_may_not_patch_a_dataset(api_client, owner, viewer):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://data/claims")
    response = send(api_client(viewer), "patch", f"/api/v1/datasets/{dataset.pk}",
                    {"uri": "s3://evil"})  # fmt: skip
    assert response.status_code == 403
    assert "Only the owner of dataset claims (owner)" in error_of(response)["message"]
    dataset.refresh_from_db()
    assert dataset.uri == "s3://data/claims"
    assert not AuditEvent.objects.filter(action="dataset.updated").exists()


def test_patching_reviewed_data_is_a_conflict_and_bad_input_a_400(api_client, owner, model):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://data/claims")
    version = factories.version(model, owner, datasets=[{"name": "claims"}])
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.APPROVED)
    c = api_client(owner)
    url = f"/api/v1/datasets/{dataset.pk}"
    conflict = send(c, "patch", url, {"uri": "s3://other"})
    assert conflict.status_code == 409
    assert "were reviewed against the recorded value" in error_of(conflict)["message"]
    for body, field in (({"name": "renamed"}, "name"), ({"uri": None}, "uri"),
                        ({"team": "strangers"}, "team")):  # fmt: skip
        refused = send(c, "patch", url, body)
        assert refused.status_code == 400, body
        assert error_of(refused)["field"] == field
    dataset.refresh_from_db()
    assert (dataset.name, dataset.uri, dataset.team) == ("claims", "s3://data/claims", None)


# ---------------------------------------------------------------------------------------------
# Sharing


def test_manager_lists_and_changes_grants(api_client, owner, viewer, model):
    c = api_client(owner)
    grants = {
        g["name"]: g["top_roles"] for g in c.get("/api/v1/models/fraud/sharing").json()["items"]
    }
    assert grants["owner"] == ["manage"]
    assert grants["viewer"] == ["view"]
    response = send(c, "put", "/api/v1/models/fraud/sharing/users/viewer", {"roles": ["review"]})
    assert response.status_code == 200
    assert response.json() == {
        "kind": "user", "name": "viewer", "roles": ["view", "review"], "top_roles": ["review"]
    }  # fmt: skip
    assert roles_for(viewer, model) == {Role.VIEW, Role.REVIEW}
    assert c.delete("/api/v1/models/fraud/sharing/users/viewer").status_code == 204
    assert roles_for(viewer, model) == set()


def test_a_team_can_be_given_a_role(api_client, owner, outsider, model):
    factories.team("risk", outsider)
    response = send(api_client(owner), "put", "/api/v1/models/fraud/sharing/teams/risk",
                    {"roles": ["view"]})  # fmt: skip
    assert response.status_code == 200
    assert response.json()["kind"] == "team"
    assert Role.VIEW in roles_for(outsider, model)


def test_the_last_manager_cannot_be_removed(api_client, owner, model):
    response = api_client(owner).delete("/api/v1/models/fraud/sharing/users/owner")
    assert response.status_code == 409
    assert "last manager" in error_of(response)["message"]
    assert Role.MANAGE in roles_for(owner, model)


def test_sharing_needs_manage_and_known_principals(api_client, owner, editor, model):
    refused = send(api_client(editor), "put", "/api/v1/models/fraud/sharing/users/editor",
                   {"roles": ["manage"]})  # fmt: skip
    assert refused.status_code == 403
    assert Role.MANAGE not in roles_for(editor, model)
    unknown = send(api_client(owner), "put", "/api/v1/models/fraud/sharing/users/ghost",
                   {"roles": ["view"]})  # fmt: skip
    assert unknown.status_code == 400
    assert "No active user" in error_of(unknown)["message"]
    bad_role = send(api_client(owner), "put", "/api/v1/models/fraud/sharing/users/editor",
                    {"roles": ["admin"]})  # fmt: skip
    assert bad_role.status_code == 400
    assert error_of(bad_role)["field"] == "roles[0]"
