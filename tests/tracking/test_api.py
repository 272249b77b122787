"""The tracking API on the wire: every endpoint's happy path, each bad input of issue 17 (a
clear INVALID_PARAMETER_VALUE and nothing written), and the access rules (another user can't
read, write or list someone else's experiment, run, logged model or files; hidden answers the
same 404 as missing)."""

import hashlib
import math

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEvent
from models_app.access import Role
from models_app.models import Artifact
from models_app.storage import open_stored
from tests import factories
from tracking import services
from tracking.models import (
    Experiment,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Run,
    RunParam,
    RunTag,
    TrackedFile,
)

pytestmark = pytest.mark.django_db
FLOAT_MAX = 1.7976931348623157e308


@pytest.fixture
def experiment(scientist):
    return services.experiment_create(actor=scientist, name="churn")


@pytest.fixture
def run(scientist, experiment):
    return services.run_create(actor=scientist, experiment=experiment, name="nightly")


def events() -> int:
    return AuditEvent.objects.count()


# ---------------------------------------------------------------------------------------------
# Experiments


def test_experiment_lifecycle_on_the_wire(caller, scientist):
    me = caller(scientist)
    created = me.post("experiments/create", {"name": "fraud"})
    assert created.status_code == 200
    exp_id = created.json()["experiment_id"]
    assert exp_id.isdigit() and exp_id != "0"
    got = me.get("experiments/get", experiment_id=exp_id).json()["experiment"]
    assert got["name"] == "fraud"
    assert got["artifact_location"] == f"mlflow-artifacts:/{exp_id}"
    assert got["lifecycle_stage"] == "active"
    assert me.get("experiments/get-by-name", experiment_name="fraud").status_code == 200
    assert (
        me.post("experiments/update", {"experiment_id": exp_id, "new_name": "fraud-2"}).json() == {}
    )
    assert me.post("experiments/delete", {"experiment_id": exp_id}).status_code == 200
    assert (
        me.get("experiments/get", experiment_id=exp_id).json()["experiment"]["lifecycle_stage"]
        == "deleted"
    )
    searched = me.post("experiments/search", {"view_type": "DELETED_ONLY"}).json()
    assert [e["name"] for e in searched["experiments"]] == ["fraud-2"]
    assert me.post("experiments/restore", {"experiment_id": exp_id}).status_code == 200
    assert Experiment.objects.get(pk=exp_id).creator == scientist
    actions = list(
        AuditEvent.objects.filter(target_type="experiment")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "experiment.created", "experiment.renamed", "experiment.deleted", "experiment.restored"
    ]  # fmt: skip


def test_experiment_name_taken_is_resource_already_exists(caller, scientist, experiment):
    answer = caller(scientist).post("experiments/create", {"name": "churn"})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_an_experiment_name_over_the_limit_is_refused(caller, scientist):
    answer = caller(scientist).post("experiments/create", {"name": "x" * 501})
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not Experiment.objects.filter(creator=scientist).exists()


def test_a_hidden_experiment_answers_like_a_missing_one(caller, colleague, experiment):
    other = caller(colleague)
    hidden = other.get("experiments/get", experiment_id=str(experiment.pk))
    missing = other.get("experiments/get", experiment_id="999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error_code"] == missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    by_name = other.get("experiments/get-by-name", experiment_name="churn")
    assert by_name.json() == other.get("experiments/get-by-name", experiment_name="nope").json() | {
        "message": "No experiment named 'churn'."
    }
    names = [e["name"] for e in other.post("experiments/search", {}).json()["experiments"]]
    assert names == ["Default"]


def test_a_team_grant_shares_an_experiment_for_reading(
    caller, scientist, colleague, experiment, run
):
    team = factories.team("fraud-team", colleague)
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=team, roles={Role.VIEW}
    )
    event = AuditEvent.objects.latest("seq")
    assert event.action == "experiment.sharing_changed"
    assert event.after == {"principal": "team fraud-team", "roles": ["view"]}
    other = caller(colleague)
    assert other.get("experiments/get", experiment_id=str(experiment.pk)).status_code == 200
    assert other.get("runs/get", run_id=run.pk).status_code == 200
    # Seeing is not writing: a run of another user cannot be written to.
    refused = other.post("runs/log-parameter", {"run_id": run.pk, "key": "a", "value": "1"})
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert not RunParam.objects.exists()
    # Nor can a viewer start runs in it.
    assert other.post("runs/create", {"experiment_id": str(experiment.pk)}).status_code == 403


# ---------------------------------------------------------------------------------------------
# Runs


def test_run_create_ignores_user_id_and_reads_back(caller, scientist, experiment):
    me = caller(scientist)
    answer = me.post(
        "runs/create",
        {
            "experiment_id": str(experiment.pk),
            "user_id": "root",
            "run_name": "nightly",
            "start_time": 1700000000000,
            "tags": [
                {"key": "mlflow.user", "value": "root"},
                {"key": "mlflow.source.name", "value": "train.py"},
            ],
        },
    )
    assert answer.status_code == 200
    run = answer.json()["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["user_id"] == "scientist"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/{info['run_id']}/artifacts"
    assert info["status"] == "RUNNING" and info["start_time"] == 1700000000000
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.user"] == "scientist"
    assert tags["mlflow.source.name"] == "train.py"
    assert Run.objects.get(pk=info["run_id"]).creator == scientist
    done = me.post("runs/update", {"run_id": info["run_id"], "status": "FINISHED", "end_time": 5})
    assert done.json()["run_info"]["status"] == "FINISHED"


def test_log_batch_metrics_params_tags_and_latest_values(caller, scientist, run):
    me = caller(scientist)
    before = events()
    body = {
        "run_id": run.pk,
        "metrics": [
            {"key": "auc", "value": 0.91, "timestamp": 10, "step": 0},
            {"key": "auc", "value": 0.93, "timestamp": 11, "step": 1},
            {"key": "loss", "value": 0.3, "timestamp": 10, "step": 0},
        ],
        "params": [{"key": "alpha", "value": "0.5"}],
        "tags": [{"key": "team", "value": "fraud"}],
    }
    assert me.post("runs/log-batch", body).status_code == 200
    assert events() == before + 1  # one event per call
    event = AuditEvent.objects.latest("seq")
    assert event.action == "run.data_logged"
    assert event.after == {
        "metrics": 3, "metric_keys": ["auc", "loss"], "params": ["alpha"], "tags": ["team"]
    }  # fmt: skip
    data = me.get("runs/get", run_id=run.pk).json()["run"]["data"]
    assert {m["key"]: (m["value"], m["step"]) for m in data["metrics"]} == {
        "auc": (0.93, 1), "loss": (0.3, 0)
    }  # fmt: skip
    # An older step logged later does not replace the latest value.
    me.post("runs/log-metric", {"run_id": run.pk, "key": "auc", "value": 0.5, "timestamp": 99})
    assert LatestMetric.objects.get(run=run, key="auc").value == 0.93
    history = me.get("metrics/get-history", run_id=run.pk, metric_key="auc").json()["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(0, 0.91), (0, 0.5), (1, 0.93)]


def test_nan_and_infinity_are_stored_as_mlflow_stores_them(caller, scientist, run):
    me = caller(scientist)
    for key, value in (("nan", "NaN"), ("inf", "Infinity"), ("ninf", "-Infinity")):
        answer = me.post(
            "runs/log-metric", {"run_id": run.pk, "key": key, "value": value, "timestamp": 1}
        )
        assert answer.status_code == 200, answer.json()
    stored = {m.key: m for m in Metric.objects.filter(run=run)}
    assert stored["nan"].is_nan and stored["nan"].value == 0
    assert stored["inf"].value == FLOAT_MAX and stored["ninf"].value == -FLOAT_MAX
    metrics = {
        m["key"]: m["value"]
        for m in me.get("runs/get", run_id=run.pk).json()["run"]["data"]["metrics"]
    }
    assert metrics == {"nan": "NaN", "inf": FLOAT_MAX, "ninf": -FLOAT_MAX}
    history = me.get("metrics/get-history", run_id=run.pk, metric_key="nan").json()
    assert math.isnan(float(history["metrics"][0]["value"]))


def test_params_are_immutable_but_the_same_value_again_is_fine(caller, scientist, run):
    me = caller(scientist)
    body = {"run_id": run.pk, "key": "alpha", "value": "0.5"}
    assert me.post("runs/log-parameter", body).status_code == 200
    assert me.post("runs/log-parameter", body).status_code == 200
    changed = me.post("runs/log-parameter", {**body, "value": "0.7"})
    assert changed.status_code == 400
    assert changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "alpha" in changed.json()["message"]
    assert RunParam.objects.get(run=run, key="alpha").value == "0.5"


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1001},
        {"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
        {"tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]},
        {"params": [{"key": "p", "value": "x" * 6001}]},
        {"tags": [{"key": "t", "value": "x" * 8001}]},
        {"metrics": [{"key": "k" * 251, "value": 1, "timestamp": 1}]},
        {"params": [{"key": "../etc", "value": "1"}]},
        {"metrics": [{"key": "m", "value": "high", "timestamp": 1}]},
        {"metrics": [{"key": "m", "value": 1}]},
        # a good metric and a bad param: nothing of the batch is written
        {
            "metrics": [{"key": "ok", "value": 1, "timestamp": 1}],
            "params": [{"key": "", "value": "1"}],
        },
    ],
    ids=[
        "1001-metrics", "101-params", "101-tags", "param-value-6001", "tag-value-8001",
        "key-251", "traversal-key", "metric-not-a-number", "metric-without-timestamp",
        "good-metric-bad-param",
    ],
)  # fmt: skip
def test_log_batch_over_limits_or_bad_writes_nothing(caller, scientist, run, body):
    me = caller(scientist)  # signing in is an audit event of its own
    before = events()
    answer = me.post("runs/log-batch", {"run_id": run.pk, **body})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not Metric.objects.exists() and not RunParam.objects.exists()
    assert RunTag.objects.filter(run=run).count() == 2  # mlflow.runName, mlflow.user
    assert events() == before


def test_a_hidden_run_answers_like_a_missing_one(caller, colleague, run):
    other = caller(colleague)
    for path in ("runs/get", "metrics/get-history"):
        hidden = other.get(path, run_id=run.pk, metric_key="auc")
        missing = other.get(path, run_id="0" * 32, metric_key="auc")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {**missing.json(), "message": f"Run {run.pk!r} not found."}
    write = other.post(
        "runs/log-metric", {"run_id": run.pk, "key": "a", "value": 1, "timestamp": 1}
    )
    assert write.status_code == 404 and write.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    search = other.post("runs/search", {"experiment_ids": [str(run.experiment_id)]})
    assert search.status_code == 404
    assert not Metric.objects.exists()


def test_runs_in_the_default_experiment_are_their_creators_alone(caller, scientist, colleague):
    mine = caller(scientist).post("runs/create", {"experiment_id": "0"}).json()["run"]["info"]
    theirs = caller(colleague).post("runs/create", {"experiment_id": "0"}).json()["run"]["info"]
    seen = caller(colleague).post("runs/search", {"experiment_ids": ["0"]}).json()["runs"]
    assert [r["info"]["run_id"] for r in seen] == [theirs["run_id"]]
    assert caller(colleague).get("runs/get", run_id=mine["run_id"]).status_code == 404


def test_log_inputs_keeps_the_dataset_and_its_context(caller, scientist, run):
    dataset = {
        "name": "card-transactions", "digest": "3f2a9c1d", "source_type": "s3",
        "source": '{"uri": "s3://bank-data/q1.parquet"}', "schema": "{}", "profile": "{}",
    }  # fmt: skip
    body = {
        "run_id": run.pk,
        "datasets": [
            {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "training"}]}
        ],
    }
    me = caller(scientist)
    assert me.post("runs/log-inputs", body).status_code == 200
    assert me.post("runs/log-inputs", body).status_code == 200  # the same dataset: kept once
    [found] = me.get("runs/get", run_id=run.pk).json()["run"]["inputs"]["dataset_inputs"]
    assert found["dataset"]["name"] == "card-transactions"
    assert found["tags"] == [{"key": "mlflow.data.context", "value": "training"}]
    assert run.inputs.get().context == "training"
    long_digest = {**dataset, "digest": "d" * 37}
    refused = me.post("runs/log-inputs", {"run_id": run.pk, "datasets": [{"dataset": long_digest}]})
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_set_and_delete_tag(caller, scientist, run):
    me = caller(scientist)
    me.post("runs/set-tag", {"run_id": run.pk, "key": "team", "value": "fraud"})
    assert me.post("runs/delete-tag", {"run_id": run.pk, "key": "team"}).status_code == 200
    again = me.post("runs/delete-tag", {"run_id": run.pk, "key": "team"})
    assert again.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_deleting_an_experiment_hides_its_runs_but_not_a_versions_files(
    caller, scientist, experiment, run
):
    model = factories.registered_model(scientist, "churn-model")
    version = factories.version(model, scientist, files={"model.bin": b"weights"})
    me = caller(scientist)
    assert me.post("experiments/delete", {"experiment_id": str(experiment.pk)}).status_code == 200
    info = me.get("runs/get", run_id=run.pk).json()["run"]["info"]
    assert info["lifecycle_stage"] == "deleted"
    active = me.post("runs/search", {"experiment_ids": [str(experiment.pk)]}).json()
    assert active == {}
    deleted = me.post(
        "runs/search", {"experiment_ids": [str(experiment.pk)], "run_view_type": "DELETED_ONLY"}
    ).json()
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [run.pk]
    refused = me.post("runs/log-metric", {"run_id": run.pk, "key": "a", "value": 1, "timestamp": 1})
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    artifact = Artifact.objects.get(version=version)
    assert open_stored(artifact.storage_key).read() == b"weights"
    assert Run.objects.get(pk=run.pk).lifecycle_stage == Lifecycle.ACTIVE  # hidden, not changed


def test_run_delete_and_restore(caller, scientist, run):
    me = caller(scientist)
    assert me.post("runs/delete", {"run_id": run.pk}).status_code == 200
    assert me.get("runs/get", run_id=run.pk).json()["run"]["info"]["lifecycle_stage"] == "deleted"
    assert me.post("runs/restore", {"run_id": run.pk}).status_code == 200


# ---------------------------------------------------------------------------------------------
# Logged models and files


def test_logged_model_flow_and_files(caller, scientist, experiment, run, client):
    me = caller(scientist)
    created = me.post(
        "logged-models",
        {
            "experiment_id": str(experiment.pk), "name": "model", "source_run_id": run.pk,
            "params": [{"key": "alpha", "value": "0.5"}],
            "tags": [{"key": "mlflow.source.type", "value": "LOCAL"}],
        },
    ).json()["model"]["info"]  # fmt: skip
    model_id = created["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert created["status"] == "LOGGED_MODEL_PENDING"
    assert (
        created["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts"
    )
    me.post("runs/outputs", {"run_id": run.pk, "models": [{"model_id": model_id, "step": 0}]})
    me.post(
        "runs/log-batch",
        {
            "run_id": run.pk,
            "metrics": [{"key": "auc", "value": 0.9, "timestamp": 1, "model_id": model_id}],
        },
    )
    url = f"/api/2.0/mlflow-artifacts/artifacts/{experiment.pk}/models/{model_id}/artifacts/MLmodel"
    put = me.client.put(url, b"flavors: {}\n", content_type="application/octet-stream")
    assert put.status_code == 200
    stored = TrackedFile.objects.get(logged_model_id=model_id, path="MLmodel")
    assert stored.sha256 == hashlib.sha256(b"flavors: {}\n").hexdigest() and stored.size == 12
    assert b"".join(me.client.get(url).streaming_content) == b"flavors: {}\n"
    listing = me.client.get(
        "/api/2.0/mlflow-artifacts/artifacts",
        {"path": f"{experiment.pk}/models/{model_id}/artifacts"},
    )
    assert listing.json() == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}]}
    final = me.post(f"logged-models/{model_id}", {"status": "LOGGED_MODEL_READY"}, method="PATCH")
    assert final.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    got = me.get(f"logged-models/{model_id}").json()["model"]
    assert got["data"]["metrics"][0]["key"] == "auc"
    assert got["info"]["params"] == [{"key": "alpha", "value": "0.5"}]
    me.post(
        f"logged-models/{model_id}/tags", {"tags": [{"key": "a", "value": "b"}]}, method="PATCH"
    )
    assert me.post(f"logged-models/{model_id}/tags/a", {}, method="DELETE").status_code == 200
    me.post(f"logged-models/{model_id}/params", {"params": [{"key": "beta", "value": "1"}]})
    found = me.post(
        "logged-models/search",
        {"experiment_ids": [str(experiment.pk)], "filter": "name = 'model'"},
    ).json()["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]
    outputs = me.get("runs/get", run_id=run.pk).json()["run"]["outputs"]
    assert outputs == {"model_outputs": [{"model_id": model_id, "step": 0}]}
    assert LoggedModel.objects.get(pk=model_id).creator == scientist


def test_logged_model_search_refuses_other_filters(caller, scientist, experiment):
    answer = caller(scientist).post(
        "logged-models/search",
        {"experiment_ids": [str(experiment.pk)], "filter": "metrics.auc > 0.5"},
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "name = '<name>'" in answer.json()["message"]


def test_files_of_someone_elses_run_cannot_be_read_listed_or_written(
    caller, scientist, colleague, experiment, run
):
    base = f"/api/2.0/mlflow-artifacts/artifacts/{experiment.pk}/{run.pk}/artifacts"
    me = caller(scientist)
    assert me.client.put(f"{base}/notes.txt", b"hi", content_type="text/plain").status_code == 200
    other = caller(colleague)
    hidden = other.client.get(f"{base}/notes.txt")
    missing = other.client.get(
        f"/api/2.0/mlflow-artifacts/artifacts/{experiment.pk}/{'0' * 32}/artifacts/notes.txt"
    )
    assert hidden.status_code == missing.status_code == 404
    listed = other.client.get(
        "/api/2.0/mlflow-artifacts/artifacts", {"path": f"{experiment.pk}/{run.pk}/artifacts"}
    )
    assert listed.status_code == 404
    put = other.client.put(f"{base}/evil.txt", b"x", content_type="text/plain")
    assert put.status_code == 404
    services.experiment_sharing_set(
        actor=experiment.creator, experiment=experiment, principal=colleague, roles={Role.VIEW}
    )
    assert other.client.get(f"{base}/notes.txt").status_code == 200
    put = other.client.put(f"{base}/evil.txt", b"x", content_type="text/plain")
    assert put.status_code == 403
    assert list(TrackedFile.objects.values_list("path", flat=True)) == ["notes.txt"]


def test_a_logged_model_of_another_run_creator_cannot_be_made(
    caller, scientist, colleague, experiment, run
):
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=colleague, roles={Role.EDIT}
    )
    answer = caller(colleague).post(
        "logged-models",
        {"experiment_id": str(experiment.pk), "name": "model", "source_run_id": run.pk},
    )
    assert answer.status_code == 403
    assert not LoggedModel.objects.exists()


def test_the_tracking_calls_answer_under_the_3_0_prefix_too(caller, scientist, run):
    me = caller(scientist)
    answer = me.client.get("/api/3.0/mlflow/runs/get", {"run_id": run.pk})
    assert answer.status_code == 200
    assert answer.json()["run"]["info"]["run_id"] == run.pk


def test_files_logged_to_runs_count_against_the_uploaders_quota(caller, scientist, run, settings):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    base = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.pk}/artifacts"
    me = caller(scientist)
    assert me.client.put(f"{base}/a.bin", b"12345678", content_type="x/y").status_code == 200
    refused = me.client.put(f"{base}/b.bin", b"12345678", content_type="x/y")
    assert refused.status_code == 413
    assert refused.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert list(TrackedFile.objects.values_list("path", flat=True)) == ["a.bin"]


def test_only_a_manager_shares_an_experiment_and_removing_roles_hides_it(
    caller, scientist, colleague, experiment, run
):
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=colleague, roles={Role.EDIT}
    )
    with pytest.raises(PermissionDenied):
        services.experiment_sharing_set(
            actor=colleague, experiment=experiment, principal=colleague, roles={Role.MANAGE}
        )
    assert caller(colleague).get("runs/get", run_id=run.pk).status_code == 200
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=colleague, roles=set()
    )
    assert caller(colleague).get("runs/get", run_id=run.pk).status_code == 404
