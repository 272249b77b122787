"""The real MLflow client running an ordinary training script against a live registry (the
script of ../shared/mlflow-tracking.md, without registered_model_name): experiments, runs,
params, metrics with steps, tags, an input dataset, a logged model with its files, then reading
it all back and downloading the logged model through ``models:/m-…``.

pandas is not installed in this environment, so ``mlflow.pyfunc`` (which imports it) cannot be
loaded: the logged model is made with the calls pyfunc.log_model makes (create the logged model
for the active run, upload its folder, finalize it READY, record it as the run's output), and
the dataset comes from numpy."""

import json
import math

import mlflow
import pytest
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelOutput,
    LoggedModelStatus,
)
from mlflow.exceptions import MlflowException

from audit.models import AuditEvent
from models_app.access import Role
from tests import factories
from tracking import services
from tracking.models import Experiment, LoggedModel, Run, TrackedFile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


DATASET = Dataset(
    name="card-transactions-2026q1",
    digest="3f2a9c1d",
    source_type="s3",
    source=json.dumps({"uri": "s3://bank-data/q1.parquet"}),
    schema=json.dumps({"mlflow_colspec": [{"type": "double", "name": "x"}]}),
    profile=json.dumps({"num_rows": 3, "num_elements": 3}),
)
MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    python_version: 3.13.0\n"


def log_model(tmp_path, name: str = "model"):
    """What mlflow.<flavor>.log_model sends for the active run."""
    client = mlflow.MlflowClient()
    run = mlflow.active_run()
    model = client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=run.info.run_id,
        params={"alpha": "0.5"},
        tags={"mlflow.source.type": "LOCAL"},
    )
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "requirements.txt").write_text("scikit-learn==1.7.0\n")
    (folder / "model.json").write_text(json.dumps({"weights": [0.25, 0.75]}))
    client.log_model_artifacts(model.model_id, str(folder))
    return client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)


@pytest.fixture
def scientist(transactional_db, monkeypatch):
    # Experiment 0 comes from a data migration, which a transactional test's flush removes.
    Experiment.objects.get_or_create(
        pk=0, defaults={"name": "Default", "creation_time": 0, "last_update_time": 0}
    )
    # set_experiment remembers the experiment for the process (and its environment).
    mlflow.tracking.fluent._active_experiment_id = None
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return factories.user("scientist")


def train(tmp_path, name: str = "fraud-training"):
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name="nightly") as run:
        mlflow.log_params({"alpha": 0.5, "max_depth": 6})
        mlflow.log_metric("auc", 0.91)
        mlflow.log_metric("auc", 0.93, step=1)
        mlflow.set_tag("team", "fraud")
        mlflow.MlflowClient().log_inputs(
            run.info.run_id,
            [DatasetInput(DATASET, tags=[InputTag("mlflow.data.context", "training")])],
        )
        info = log_model(tmp_path)
    return run, info


def test_training_script_runs_unchanged_and_reads_back(as_user, scientist, live_server, tmp_path):
    client = as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    run, info = train(tmp_path)

    stored = Run.objects.get(pk=run.info.run_id)
    assert stored.creator == scientist
    assert stored.status == Run.Status.FINISHED
    experiment = Experiment.objects.get(name="fraud-training")
    assert experiment.creator == scientist

    fetched = client.get_run(run.info.run_id)
    assert fetched.info.user_id == "scientist"
    assert fetched.info.artifact_uri == (
        f"mlflow-artifacts:/{experiment.pk}/{run.info.run_id}/artifacts"
    )
    assert fetched.data.params == {"alpha": "0.5", "max_depth": "6"}
    assert fetched.data.metrics == {"auc": 0.93}
    assert fetched.data.tags["team"] == "fraud"
    assert fetched.data.tags["mlflow.user"] == "scientist"
    [dataset_input] = fetched.inputs.dataset_inputs
    assert dataset_input.dataset.name == "card-transactions-2026q1"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    assert "s3://bank-data/q1.parquet" in dataset_input.dataset.source

    history = client.get_metric_history(run.info.run_id, "auc")
    assert [(m.step, m.value) for m in history] == [(0, 0.91), (1, 0.93)]

    [found] = client.search_runs([str(experiment.pk)])
    assert found.info.run_id == run.info.run_id
    assert found.data.metrics == {"auc": 0.93}
    names = [e.name for e in client.search_experiments()]
    assert "fraud-training" in names and "Default" in names

    logged = LoggedModel.objects.get(pk=info.model_id)
    assert logged.status == LoggedModel.Status.READY
    assert logged.source_run_id == run.info.run_id
    files = {f.path: f for f in TrackedFile.objects.filter(logged_model=logged)}
    assert set(files) == {"MLmodel", "requirements.txt", "model.json"}
    assert all(len(f.sha256) == 64 and f.size > 0 for f in files.values())
    [model] = client.search_logged_models([str(experiment.pk)], filter_string="name = 'model'")
    assert model.model_id == info.model_id
    assert model.source_run_id == run.info.run_id

    downloaded = mlflow.artifacts.download_artifacts(
        f"models:/{info.model_id}", dst_path=str(tmp_path / "loaded")
    )
    loaded = json.loads((tmp_path / "loaded" / "model.json").read_text())
    assert downloaded and loaded == {"weights": [0.25, 0.75]}

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "experiment.created", "run.created", "run.data_logged", "run.inputs_logged",
        "logged_model.created", "logged_model.file_logged", "logged_model.finalized",
        "run.updated",
    } <= actions  # fmt: skip


def test_runs_in_the_default_experiment_are_private_to_their_creator(
    as_user, scientist, live_server
):
    other = factories.user("other")
    as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", float("nan"))
        mlflow.log_metric("gain", float("inf"))
    client = as_user(other)
    assert client.search_runs(["0"]) == []
    with pytest.raises(MlflowException) as hidden:
        client.get_run(run.info.run_id)
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    mine = as_user(scientist).get_run(run.info.run_id)
    assert math.isnan(mine.data.metrics["loss"])
    assert mine.data.metrics["gain"] == 1.7976931348623157e308


def test_another_user_cannot_read_or_write_someone_elses_experiment(
    as_user, scientist, live_server, tmp_path
):
    outsider = factories.user("outsider")
    as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    run, info = train(tmp_path, "private-exp")
    client = as_user(outsider)
    for call in (
        lambda: client.get_run(run.info.run_id),
        lambda: client.log_metric(run.info.run_id, "auc", 0.1),
        lambda: client.get_logged_model(info.model_id),
        lambda: client.list_artifacts(run.info.run_id),
    ):
        with pytest.raises(MlflowException) as refused:
            call()
        assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name("private-exp") is None  # the client's 404
    assert client.search_experiments(filter_string="name = 'private-exp'") == []
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(f"models:/{info.model_id}", dst_path=str(tmp_path))


def test_experiment_tags_through_the_client(as_user, scientist, live_server):
    viewer = factories.user("viewer")
    client = as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    exp_id = client.create_experiment("tagged")
    client.set_experiment_tag(exp_id, "team", "fraud")
    client.set_experiment_tag(exp_id, "mlflow.note.content", "Nightly retraining.")
    assert client.get_experiment(exp_id).tags == {
        "team": "fraud",
        "mlflow.note.content": "Nightly retraining.",
    }
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"mlflow.note.content": "Nightly retraining."}
    with pytest.raises(MlflowException) as too_long:
        client.set_experiment_tag(exp_id, "k" * 251, "v")
    assert too_long.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as missing:
        client.delete_experiment_tag(exp_id, "team")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unknown:
        client.set_experiment_tag("999999", "team", "fraud")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    experiment = Experiment.objects.get(pk=exp_id)
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=viewer, roles={Role.VIEW}
    )
    reader = as_user(viewer)
    assert reader.get_experiment(exp_id).tags == {"mlflow.note.content": "Nightly retraining."}
    for call in (
        lambda: reader.set_experiment_tag(exp_id, "team", "mine"),
        lambda: reader.delete_experiment_tag(exp_id, "mlflow.note.content"),
    ):
        with pytest.raises(MlflowException) as refused:
            call()
        assert refused.value.error_code == "PERMISSION_DENIED"
    outsider = as_user(factories.user("outsider"))
    with pytest.raises(MlflowException) as hidden:
        outsider.set_experiment_tag(exp_id, "team", "mine")
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert dict(experiment.tags.values_list("key", "value")) == {
        "mlflow.note.content": "Nightly retraining."
    }
