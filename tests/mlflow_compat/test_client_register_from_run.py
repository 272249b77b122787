"""Registering from a run or a logged model with the real client against a live registry: the
training script of ../shared/mlflow-tracking.md unchanged (pyfunc PythonModel, from_pandas,
log_model with registered_model_name), approval and promotion through the registry's own
services, load_model of the alias predicting, register_model("runs:/…") sharing the bytes, the
metadata resume on the version page; the same with mlflow.sklearn; who may register from what.
"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from approvals import services as workflow
from audit.models import AuditEvent
from models_app.models import Artifact, ModelVersion
from tests import factories
from tracking.models import Experiment, LoggedModel, TrackedFile

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

URL = None  # set by each test: the live server


class M(mlflow.pyfunc.PythonModel):
    """Doubles the first column: easy to check the prediction came from this model."""

    def predict(self, context, model_input, params=None):
        return model_input["x"] * 2


def training_data() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 1.0]})


@pytest.fixture
def scientist(transactional_db, monkeypatch):
    # Experiment 0 comes from a data migration, which a transactional test's flush removes.
    Experiment.objects.get_or_create(
        pk=0, defaults={"name": "Default", "creation_time": 0, "last_update_time": 0}
    )
    mlflow.tracking.fluent._active_experiment_id = None
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return factories.user("scientist")


def the_script(url: str, df: pd.DataFrame):
    """The script of ../shared/mlflow-tracking.md, as a data scientist writes it (up to the
    registration; the alias, loading and second registration follow in the test)."""
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("fraud-training")
    with mlflow.start_run(run_name="nightly") as run:
        mlflow.log_params({"alpha": 0.5, "max_depth": 6})
        mlflow.log_metric("auc", 0.91)
        mlflow.log_metric("auc", 0.93, step=1)
        mlflow.set_tag("team", "fraud")
        mlflow.log_input(
            mlflow.data.from_pandas(
                df, name="card-transactions-2026q1", source="s3://bank-data/q1.parquet"
            ),
            context="training",
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=M(),
            input_example=df,
            registered_model_name="churn-predictor",
        )
    return run, info


def approve_and_promote(version: ModelVersion, *, owner, reviewer) -> None:
    """Through the registry's services, as reviewers do on the dashboard. The model was created
    by the client, so its policy requires signatures: each decision is signed. A PythonModel is
    a cloudpickle, which the inspection gate flags as code that runs when loaded: the reviewer
    (manage role) approves with an override reason, as the gate asks."""
    factories.grant(reviewer, version.model, "manage")
    workflow.version_submit(actor=owner, version=version)
    workflow.review_approve(
        actor=reviewer, version=version, signature=factories.signing("Reviewed — technical"),
        override_reason="python_model.pkl is our own PythonModel class, reviewed in the repo.",
    )  # fmt: skip
    workflow.alias_set(
        actor=owner, model=version.model, name="production", version=version,
        signature=factories.signing("Released for use under this alias"),
    )  # fmt: skip


def test_the_training_script_registers_loads_and_registers_again(
    as_user, scientist, live_server, tmp_path, client
):
    client_ml = as_user(scientist)
    df = training_data()
    run, info = the_script(live_server.url, df)
    run_id = run.info.run_id

    v1 = ModelVersion.objects.select_related("model").get(model__name="churn-predictor")
    assert v1.number == 1 and v1.source_run == run_id
    fetched = client_ml.get_model_version("churn-predictor", "1")
    assert fetched.run_id == run_id and fetched.status == "READY"
    assert fetched.source == f"models:/{info.model_id}"
    # Adopted by reference: the version's files are the logged model's stored bytes.
    tracked = {f.path: f for f in TrackedFile.objects.filter(logged_model_id=info.model_id)}
    files = {a.path: a for a in v1.artifacts.all()}
    assert set(files) == set(tracked) and {"MLmodel", "python_model.pkl"} <= set(files)
    for path, artifact in files.items():
        assert artifact.storage_key == tracked[path].storage_key
        assert (artifact.sha256, artifact.size) == (tracked[path].sha256, tracked[path].size)
    # The resume, from the run.
    assert {p.key: p.value for p in v1.params.all()} == {"alpha": "0.5", "max_depth": "6"}
    assert [(m.name, m.value, m.step) for m in v1.metrics.all()] == [("auc", 0.93, 1)]
    [link] = v1.dataset_links.select_related("dataset")
    assert (link.dataset.name, link.role) == ("card-transactions-2026q1", "train")
    assert link.dataset.uri == "s3://bank-data/q1.parquet" and link.dataset.digest
    assert v1.signature and "inputs" in v1.signature
    assert v1.python_version and "cloudpickle" in v1.requirements
    assert v1.tags.get(key="mlflow.source.name").value
    # The client recorded the registration on the logged model.
    model_versions = json.loads(
        LoggedModel.objects.get(pk=info.model_id).tags.get(key="mlflow.modelVersions").value
    )
    assert model_versions == [{"name": "churn-predictor", "version": "1"}] or model_versions == [
        {"name": "churn-predictor", "version": 1}
    ]
    assert AuditEvent.objects.filter(action="version.registered_from_run").count() == 1

    client_ml.update_model_version("churn-predictor", "1", description="Nightly retrain on Q1.")
    approve_and_promote(v1, owner=scientist, reviewer=factories.user("reviewer"))
    as_user(scientist).set_registered_model_alias("churn-predictor", "champion", "1")
    loaded = mlflow.pyfunc.load_model("models:/churn-predictor@champion")
    assert list(loaded.predict(df)) == [2.0, 4.0, 6.0]

    v2 = mlflow.register_model(f"runs:/{run_id}/model", "churn-predictor")
    assert v2.version == "2" and v2.run_id == run_id
    second = ModelVersion.objects.get(model=v1.model, number=2)
    assert sorted(second.artifacts.values_list("path", "storage_key")) == sorted(
        v1.artifacts.values_list("path", "storage_key")
    )
    # Stored once: every key is a tracked file's, and the tracked files are all still there.
    assert set(Artifact.objects.values_list("storage_key", flat=True)) == {
        f.storage_key for f in tracked.values()
    }
    assert TrackedFile.objects.filter(logged_model_id=info.model_id).count() == len(tracked)

    # What a reviewer sees on the version page, typed by no one.
    viewer = factories.user("viewer")
    factories.grant(viewer, v1.model, "view")
    client.force_login(viewer)
    page = client.get(f"/models/{v1.model.slug}/versions/2/")
    assert page.status_code == 200
    html = page.content.decode()
    for expected in (
        "alpha", "max_depth", "auc", "at step 1", "card-transactions-2026q1", "Training",
        link.dataset.digest[:8], "s3://bank-data/q1.parquet", "cloudpickle", run_id,
        "mlflow.source.name",
    ):  # fmt: skip
        assert expected in html, expected


def test_mlflow_sklearn_log_model_registers_and_loads(as_user, scientist, live_server):
    from sklearn.linear_model import LogisticRegression

    as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_experiment("sklearn-training")
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with mlflow.start_run() as run:
        estimator = LogisticRegression(C=1.0).fit(X, y)
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("accuracy", estimator.score(X, y))
        # skops (mlflow.sklearn's default format) is not installed here: cloudpickle, as
        # mlflow.sklearn wrote before it.
        mlflow.sklearn.log_model(
            estimator, name="model", input_example=X, registered_model_name="sk-model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )  # fmt: skip
    version = ModelVersion.objects.get(model__name="sk-model")
    assert version.source_run == run.info.run_id
    assert version.framework and "scikit-learn" in version.requirements
    assert {p.key for p in version.params.all()} >= {"C"}
    assert [m.name for m in version.metrics.all()] == ["accuracy"]
    loaded = mlflow.pyfunc.load_model("models:/sk-model/1")
    assert list(loaded.predict(X)) == list(estimator.predict(X))


def _logged_model(client, tmp_path, *, ready: bool = True):
    run = mlflow.active_run()
    model = client.create_logged_model(
        experiment_id=run.info.experiment_id, name="model", source_run_id=run.info.run_id
    )
    folder = tmp_path / model.model_id
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    client.log_model_artifacts(model.model_id, str(folder))
    if ready:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model


def test_registering_someone_elses_run_or_model_is_404_like_a_missing_one(
    as_user, scientist, live_server, tmp_path
):
    owner = as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_experiment("private")
    with mlflow.start_run() as run:
        logged = _logged_model(owner, tmp_path)
    outsider = factories.user("outsider")
    factories.registered_model(outsider, "theirs")
    client = as_user(outsider)
    missing_run, missing_model = "0" * 32, "m-" + "0" * 32
    location = logged.artifact_location
    for source, missing in (
        (f"models:/{logged.model_id}", f"models:/{missing_model}"),
        (f"runs:/{run.info.run_id}/model", f"runs:/{missing_run}/model"),
        (location, location.replace(logged.model_id, missing_model)),
    ):
        bodies = []
        for uri in (source, missing):
            with pytest.raises(MlflowException) as refused:
                client.create_model_version("theirs", uri, run_id=None)
            assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
            bodies.append(str(refused.value).replace(uri, "<source>"))
        assert bodies[0] == bodies[1]
    assert not ModelVersion.objects.exists()


def test_a_pending_logged_model_and_an_empty_run_path_are_refused(
    as_user, scientist, live_server, tmp_path
):
    client = as_user(scientist)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_experiment("unfinished")
    factories.registered_model(scientist, "target")
    with mlflow.start_run() as run:
        pending = _logged_model(client, tmp_path, ready=False)
    with pytest.raises(MlflowException) as not_ready:
        client.create_model_version("target", f"models:/{pending.model_id}")
    assert not_ready.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "LOGGED_MODEL_PENDING, not LOGGED_MODEL_READY" in str(not_ready.value)
    with pytest.raises(MlflowException) as nothing:
        client.create_model_version("target", f"runs:/{run.info.run_id}/no-such-thing")
    assert nothing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with mlflow.start_run():
        ready = _logged_model(client, tmp_path)
    with pytest.raises(MlflowException) as other_run:
        client.create_model_version("target", f"models:/{ready.model_id}", run_id=run.info.run_id)
    assert other_run.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "is not the run of" in str(other_run.value)
    assert not ModelVersion.objects.exists()
