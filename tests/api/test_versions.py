"""Versions through the API: metadata validated by the registry's parser, drafts editable,
everything else frozen; lineage that never names what the caller may not see."""

import pytest

from approvals import services as workflow
from audit.models import AuditEvent
from models_app import summary
from models_app.models import Dataset, Metric, ModelVersion
from tests import factories
from tests.api.conftest import error_of, good_version, send

pytestmark = pytest.mark.django_db

METADATA = {
    "description": "Gradient boosting on Q1 payments.",
    "framework": "xgboost",
    "framework_version": "2.1.0",
    "python_version": "3.12",
    "requirements": "xgboost==2.1.0\nnumpy>=2",
    "signature": {"inputs": [{"name": "amount", "type": "double"}]},
    "source": {
        "run": "runs/42",
        "repository": "git@example.org:risk/fraud.git",
        "commit": "abc123",
    },
    "metrics": [{"name": "auc", "value": 0.91, "split": "test"}, {"name": "loss", "value": 0.2}],
    "params": {"depth": 6, "eta": 0.1, "early_stop": True},
    "tags": {"owner": "risk"},
    "datasets": [{"name": "payments-q1", "role": "train", "uri": "s3://data/q1", "rows": 1000}],
}


def test_editor_registers_a_version_with_its_metadata(api_client, editor, model):
    response = send(api_client(editor), "post", "/api/v1/models/fraud/versions", METADATA)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == 1
    assert body["status"] == "draft"
    assert body["created_by"] == "editor"
    assert body["source"] == {
        "run": "runs/42", "repository": "git@example.org:risk/fraud.git", "commit": "abc123"
    }  # fmt: skip
    assert {(m["name"], m["split"]) for m in body["metrics"]} == {("auc", "test"), ("loss", "")}
    assert body["params"] == {"depth": "6", "eta": "0.1", "early_stop": "true"}
    assert body["datasets"][0]["name"] == "payments-q1"
    assert body["signature"] == METADATA["signature"]
    version = ModelVersion.objects.get()
    assert version.framework == "xgboost"
    assert sorted(version.dependencies.values_list("name", flat=True)) == ["numpy", "xgboost"]
    assert AuditEvent.objects.filter(action="version.created", actor=editor).count() == 1


def test_metrics_may_also_be_an_object_of_name_and_value(api_client, editor, model):
    response = send(
        api_client(editor), "post", "/api/v1/models/fraud/versions", {"metrics": {"auc": 0.9}}
    )
    assert response.status_code == 201
    assert Metric.objects.get().value == 0.9


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"metrics": [{"name": "auc", "value": 1}, {"name": "auc", "value": 2}]}, "metrics[1]"),
        ({"requirements": "numpy\nnumpy"}, "requirements"),
        ({"parents": [{"model": "nope", "version": 1}]}, "parents[0]"),
        ({"metrics": [{"name": "auc", "value": "high"}]}, "metrics[0].value"),
        ({"datasets": [{"name": "d", "role": "holdout"}]}, "datasets[0].role"),
    ],
)
def test_invalid_metadata_is_400_naming_the_field_and_nothing_is_saved(
    api_client, editor, model, metadata, field
):
    response = send(api_client(editor), "post", "/api/v1/models/fraud/versions", metadata)
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert not ModelVersion.objects.exists()
    assert not AuditEvent.objects.filter(action="version.created").exists()


def test_viewer_cannot_register_a_version(api_client, viewer, model):
    response = send(api_client(viewer), "post", "/api/v1/models/fraud/versions", {})
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()


def test_versions_list_newest_first_with_a_status_filter(api_client, viewer, model, editor):
    for _ in range(3):
        factories.version(model, editor, metrics={"auc": 0.8})
    workflow.version_submit(actor=editor, version=model.versions.get(number=2))
    c = api_client(viewer)
    body = c.get("/api/v1/models/fraud/versions").json()
    assert [v["number"] for v in body["items"]] == [3, 2, 1]
    assert body["items"][0]["metrics"] == [{"name": "auc", "value": 0.8, "split": "", "step": None}]
    in_review = c.get("/api/v1/models/fraud/versions?status=in_review").json()
    assert [v["number"] for v in in_review["items"]] == [2]


def test_versions_list_does_a_constant_number_of_queries(
    api_client, owner, model, assert_constant_queries
):
    c = api_client(owner)
    for _ in range(3):
        factories.version(model, owner, metrics={"auc": 0.9, "loss": 0.1})

    def grow():
        versions = ModelVersion.objects.bulk_create(
            ModelVersion(model=model, number=n, created_by=owner) for n in range(10, 310)
        )
        Metric.objects.bulk_create(Metric(version=v, name="auc", value=0.5) for v in versions)
        summary.recompute([model.pk])

    def request():
        assert c.get("/api/v1/models/fraud/versions?limit=200").status_code == 200

    queries = assert_constant_queries(request, grow)
    assert queries <= 8


def test_version_detail_hides_parents_you_may_not_view(api_client, viewer, owner, model):
    secret = factories.registered_model(owner, "secret-base")
    base = factories.version(secret, owner)
    factories.version(model, owner, parents=[{"model": "secret-base", "version": base.number}])
    body = api_client(viewer).get("/api/v1/models/fraud/versions/1").json()
    assert body["parents"] == [{"hidden": True, "deleted": False, "model": None, "version": None,
                                "relation": "retrained"}]  # fmt: skip
    assert "secret" not in str(body)


def test_draft_metadata_update_keeps_what_is_not_sent(api_client, editor, model):
    c = api_client(editor)
    send(c, "post", "/api/v1/models/fraud/versions", METADATA)
    response = send(
        c, "patch", "/api/v1/models/fraud/versions/1",
        {"description": "Now with more trees.", "metrics": {"auc": 0.93}},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    version = ModelVersion.objects.get()
    assert version.description == "Now with more trees."
    assert version.framework == "xgboost"
    assert version.metric_map() == {("auc", ""): 0.93}
    assert dict(version.tags.values_list("key", "value")) == {"owner": "risk"}


def test_editing_a_submitted_version_is_409_and_changes_nothing(api_client, editor, model):
    version = good_version(model, editor)
    workflow.version_submit(actor=editor, version=version)
    c = api_client(editor)
    response = send(c, "patch", "/api/v1/models/fraud/versions/1", {"description": "sneaky"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert "frozen" in error_of(response)["message"]
    version.refresh_from_db()
    assert version.description == "Retrained on Q1"
    assert not AuditEvent.objects.filter(action="version.updated").exists()


@pytest.mark.parametrize("field", ["status", "created_by", "number"])
def test_protected_fields_in_a_version_update_are_400_and_never_applied(
    api_client, editor, model, field
):
    version = good_version(model, editor)
    value = {"status": "approved", "created_by": "root", "number": 7}[field]
    response = send(
        api_client(editor), "patch", "/api/v1/models/fraud/versions/1",
        {field: value, "description": "also sneaky"},
    )  # fmt: skip
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert field in error_of(response)["message"]
    version.refresh_from_db()
    assert (version.status, version.number, version.created_by) == ("draft", 1, editor)
    assert version.description == "Retrained on Q1"


def test_drafts_can_be_deleted_other_versions_cannot(api_client, editor, model):
    c = api_client(editor)
    draft = good_version(model, editor)
    submitted = good_version(model, editor)
    workflow.version_submit(actor=editor, version=submitted)
    assert c.delete("/api/v1/models/fraud/versions/2").status_code == 409
    assert c.delete("/api/v1/models/fraud/versions/1").status_code == 204
    assert list(model.versions.values_list("pk", flat=True)) == [submitted.pk]
    assert not ModelVersion.objects.filter(pk=draft.pk).exists()


def test_lineage_shows_datasets_and_hides_versions_you_may_not_view(
    api_client, viewer, owner, model
):
    secret = factories.registered_model(owner, "secret-base")
    hidden = factories.version(secret, owner)
    base = factories.version(model, owner, datasets=[{"name": "claims", "role": "train"}])
    factories.version(
        model, owner,
        parents=[{"model": "fraud", "version": base.number},
                 {"model": "secret-base", "version": hidden.number}],
    )  # fmt: skip
    body = api_client(viewer).get("/api/v1/models/fraud/versions/2/lineage").json()
    assert body["model"] == "fraud"
    assert body["ancestors"] == [
        [
            {"hidden": False, "model": "fraud", "number": 1, "status": "draft",
             "note": "fraud v2 was retrained from it"},
            {"hidden": True},
        ]
    ]  # fmt: skip
    assert "secret" not in str(body)
    first = api_client(viewer).get("/api/v1/models/fraud/versions/1/lineage").json()
    assert first["datasets"][0]["name"] == "claims"
    assert first["descendants"][0][0]["number"] == 2


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"datasets": [{"name": f"d{i}", "uri": f"s3://d/{i}"} for i in range(6000)]}, "datasets"),
        ({"parents": [{"model": "fraud", "version": i} for i in range(1, 22)]}, "parents"),
    ],
)
def test_thousands_of_datasets_or_parents_are_refused_before_any_write(
    api_client, editor, model, metadata, field
):
    response = send(api_client(editor), "post", "/api/v1/models/fraud/versions", metadata)
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert not ModelVersion.objects.exists() and not Dataset.objects.exists()
