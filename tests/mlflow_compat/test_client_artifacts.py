"""Files through the artifact proxy with the real MLflow client: upload, register the staged
files as a version, promote it, and download ``models:/name@production``."""

import hashlib
import pickle
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from approvals import services as approvals
from models_app.models import Artifact, ModelVersion
from registry_site.mlflow_compat.models import StagedArtifact
from tests.mlflow_compat.conftest import approve

pytestmark = pytest.mark.django_db(transaction=True)

BIG = 3 * 1024 * 1024 + 17  # past Django's 2.5 MB in-memory body limit: must be streamed


def model_folder(root: Path) -> dict[str, bytes]:
    files = {
        "MLmodel": b"flavors:\n  python_function: {}\n",
        # A real pickle (a dict of bytes): the approval gate fails a pickle it cannot verify.
        "model.pkl": pickle.dumps({"weights": bytes(range(256)) * (BIG // 256 + 1)}, protocol=4),
        "extra/notes.txt": "précis\n".encode(),
        "extra/archive.tar.gz": b"\x1f\x8b\x08\x00 not really gzip",
    }
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != "registered_model_meta"
    }


@pytest.fixture
def strict_policy(shared_model, people):
    """Files are re-hashed from storage on approval (the default gate), nothing else."""
    approvals.policy_update(
        actor=people["owner"], model=shared_model, required_approvals=1,
        require_description=False, require_training_dataset=False, require_metrics=False,
        verify_artifacts=True,
    )  # fmt: skip
    return shared_model


def upload_register_promote_download(as_user, people, tmp_path) -> dict[str, bytes]:
    files = model_folder(tmp_path / "local")
    as_user(people["editor"])
    get_artifact_repository("mlflow-artifacts:/registry/fraud-detector/run-7f3a").log_artifacts(
        str(tmp_path / "local")
    )
    assert StagedArtifact.objects.count() == len(files)

    mv = mlflow.register_model(
        "mlflow-artifacts:/registry/fraud-detector/run-7f3a", "fraud-detector"
    )
    assert mv.version == "1" and mv.status == "READY"
    assert mv.tags["registry.status"] == "draft"
    assert (
        mv.source
        == mv.tags["registry.source"]
        == ("mlflow-artifacts:/registry/fraud-detector/run-7f3a")
    )
    assert "registry.source_verified" not in mv.tags  # hashed by the registry on upload
    version = ModelVersion.objects.get()
    stored = {a.path: (a.size, a.sha256) for a in version.artifacts.all()}
    assert stored == {p: (len(c), hashlib.sha256(c).hexdigest()) for p, c in files.items()}
    assert not StagedArtifact.objects.exists()  # adopted, no longer staged

    approve(version, editor=people["editor"], reviewer=people["reviewer"])
    as_user(people["promoter"]).set_registered_model_alias("fraud-detector", "production", "1")

    as_user(people["viewer"])
    out = mlflow.artifacts.download_artifacts(
        "models:/fraud-detector@production", dst_path=str(tmp_path / "download")
    )
    assert read_tree(Path(out)) == files
    return files


def test_upload_register_promote_and_download_by_alias(as_user, people, strict_policy, tmp_path):
    files = upload_register_promote_download(as_user, people, tmp_path)
    as_user(people["viewer"])
    one = mlflow.artifacts.download_artifacts(
        "models:/fraud-detector/1/extra/notes.txt", dst_path=str(tmp_path / "one")
    )
    assert Path(one).read_bytes() == files["extra/notes.txt"]
    latest = mlflow.artifacts.download_artifacts(
        "models:/fraud-detector/latest", dst_path=str(tmp_path / "latest")
    )
    assert read_tree(Path(latest)) == files


def test_the_same_chain_works_with_artifacts_on_s3(
    as_user, people, strict_policy, tmp_path, s3_storage
):
    upload_register_promote_download(as_user, people, tmp_path)
    keys = list(Artifact.objects.values_list("storage_key", flat=True))
    assert all(s3_storage.exists(k) for k in keys)


def test_uploads_are_edit_role_and_visible_only_to_editors(as_user, people, shared_model, tmp_path):
    local = tmp_path / "model.bin"
    local.write_bytes(b"weights")
    uri = "mlflow-artifacts:/registry/fraud-detector/upload-1"

    as_user(people["viewer"])
    with pytest.raises(requests.HTTPError) as viewer:  # the artifact client raises requests'
        get_artifact_repository(uri).log_artifact(str(local))
    assert viewer.value.response.status_code == 403
    assert "edit role" in str(viewer.value)
    as_user(people["outsider"])
    with pytest.raises(requests.HTTPError) as outsider:
        get_artifact_repository(uri).log_artifact(str(local))
    assert outsider.value.response.status_code == 404
    assert "RESOURCE_DOES_NOT_EXIST" in str(outsider.value)
    assert not StagedArtifact.objects.exists()

    as_user(people["editor"])
    repo = get_artifact_repository(uri)
    repo.log_artifact(str(local))
    local.write_bytes(b"better weights")
    repo.log_artifact(str(local))  # the same path again replaces the upload
    staged = StagedArtifact.objects.get()
    assert staged.sha256 == hashlib.sha256(b"better weights").hexdigest()
    assert [f.path for f in repo.list_artifacts()] == ["model.bin"]
    repo.delete_artifacts()
    assert not StagedArtifact.objects.exists()


def test_registering_files_uploaded_for_another_model_or_nothing_is_refused(
    as_user, people, shared_model, tmp_path
):
    from tests import factories

    other = factories.registered_model(people["editor"], "other-model")
    local = tmp_path / "model.bin"
    local.write_bytes(b"weights")
    client = as_user(people["editor"])
    get_artifact_repository("mlflow-artifacts:/registry/other-model/u1").log_artifact(str(local))

    with pytest.raises(MlflowException) as wrong_model:
        client.create_model_version("fraud-detector", "mlflow-artifacts:/registry/other-model/u1")
    assert wrong_model.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "uploaded for model other-model" in str(wrong_model.value)
    with pytest.raises(MlflowException) as empty:
        client.create_model_version("fraud-detector", "mlflow-artifacts:/registry/fraud-detector/x")
    assert "No files were uploaded" in str(empty.value)
    assert not ModelVersion.objects.exists()
    assert StagedArtifact.objects.filter(model=other).count() == 1


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("file:///etc/passwd", "'file' sources are refused"),
        ("/etc/passwd", "is a local path"),
        ("C:\\models\\m", "is a local path"),
        ("http://169.254.169.254/latest/meta-data/", "'http' sources are refused"),
        ("https://example.org/model.tar.gz", "'https' sources are refused"),
        ("runs:/abc123/model", "a runs: source is runs:/<run id>/<path in the run>"),
        ("ftp://example.org/m", "'ftp' sources are refused"),
        ("mlflow-artifacts:/registry/fraud-detector/1", "is not a folder of uploaded files"),
        ("mlflow-artifacts:/registry/fraud-detector/%2e%2e/other", "must not contain '..'"),
        ("mlflow-artifacts://evil.example/registry/fraud-detector/u", "names another server"),
        ("s3://bucket/../../etc", "must not contain '..'"),
        ("gopher://x/y", "Unsupported source scheme 'gopher'"),
    ],
)
def test_refused_sources_say_why_and_register_nothing(
    as_user, people, shared_model, source, reason
):
    client = as_user(people["editor"])
    with pytest.raises(MlflowException) as refused:
        client.create_model_version("fraud-detector", source)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert reason in str(refused.value)
    assert not ModelVersion.objects.exists()
