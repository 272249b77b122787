"""Uploads anywhere in the artifact proxy's namespace (not a version's folder, not
registry/<model>/<upload>/, not a run's location): owned by the first uploader, invisible to
everyone else, registrable by their owner as often as they like, the bytes stored once."""

import hashlib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from models_app import storage
from models_app.metadata import parse_metadata
from models_app.models import Artifact, ModelVersion
from registry_site.mlflow_compat import services
from registry_site.mlflow_compat.models import StagedArtifact
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"
SOURCE = "mlflow-artifacts:/team-x/uploads/abc"
# Measured: a session and user lookup, then one query (the registration: 14 whatever the files).
LIST_QUERIES, READ_QUERIES, REGISTER_QUERIES = 3, 3, 14
FILES = {"MLmodel": b"flavors:\n  python_function: {}\n", "data/weights.bin": b"w" * 1000}


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def put(client, path: str, body: bytes):
    return client.generic(
        "PUT", f"{ARTIFACTS}/{path}", body, content_type="application/octet-stream"
    )


def register(client, model: str, source: str = SOURCE):
    return client.post(
        f"{API}/model-versions/create",
        {"name": model, "source": source},
        content_type="application/json",
    )


def download(client, path: str) -> bytes:
    response = client.get(f"{ARTIFACTS}/{path}")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def is_missing(response) -> bool:
    return (
        response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    )


@pytest.fixture
def uploaded(db, editor):
    """``editor`` uploaded FILES under team-x/uploads/abc and may edit fraud-detector."""
    factories.registered_model(editor, "fraud-detector")
    client = signed_in(editor)
    for path, content in FILES.items():
        assert put(client, f"team-x/uploads/abc/{path}", content).json() == {}
    return client


# ---------------------------------------------------------------------------------------------
# The owner


def test_the_owner_lists_and_reads_their_upload(uploaded):
    listing = uploaded.get(ARTIFACTS, {"path": "team-x/uploads/abc"}).json()
    assert listing == {
        "files": [
            {"path": "data", "is_dir": True},
            {"path": "MLmodel", "is_dir": False, "file_size": len(FILES["MLmodel"])},
        ]
    }
    root = uploaded.get(ARTIFACTS, {"path": ""}).json()
    assert root == {
        "files": [{"path": "registry", "is_dir": True}, {"path": "team-x", "is_dir": True}]
    }
    assert download(uploaded, "team-x/uploads/abc/data/weights.bin") == FILES["data/weights.bin"]


def test_an_upload_writes_its_audit_event_and_counts_against_the_uploaders_quota(uploaded, editor):
    events = AuditEvent.objects.filter(action="mlflow.file_staged").order_by("pk")
    assert [e.after["path"] for e in events] == [f"team-x/uploads/abc/{p}" for p in FILES]
    assert all(e.actor_id == editor.pk and e.model_id is None for e in events)
    assert services.staged_bytes_of_user(editor.pk) == sum(len(c) for c in FILES.values())


def test_registering_an_upload_shares_its_bytes_and_the_source_stays_registrable(uploaded, editor):
    factories.registered_model(editor, "other-model")
    for model in ("fraud-detector", "fraud-detector", "other-model"):
        response = register(uploaded, model)
        assert response.status_code == 200, response.content
        assert response.json()["model_version"]["source"] == SOURCE
    versions = ModelVersion.objects.order_by("model__name", "number")
    assert [(v.model.name, v.number) for v in versions] == [
        ("fraud-detector", 1), ("fraud-detector", 2), ("other-model", 1),
    ]  # fmt: skip
    for version in versions:
        files = {a.path: a.sha256 for a in version.artifacts.all()}
        assert files == {p: hashlib.sha256(c).hexdigest() for p, c in FILES.items()}
        assert (
            download(uploaded, f"registry/{version.model.slug}/{version.number}/data/weights.bin")
            == FILES["data/weights.bin"]
        )
    # Stored once: one file per uploaded file, whatever the number of versions.
    assert len(stored_keys("artifacts")) == len(FILES)
    assert Artifact.objects.values("storage_key").distinct().count() == len(FILES)
    assert StagedArtifact.objects.count() == len(FILES)  # the uploads stay
    # Once adopted, the bytes count as the versions' artifacts, not also as staged.
    assert services.staged_bytes_of_user(editor.pk) == 0


def test_a_sub_folder_or_a_single_file_of_an_upload_registers_too(uploaded):
    response = register(uploaded, "fraud-detector", f"{SOURCE}/data")
    assert response.status_code == 200, response.content
    assert list(Artifact.objects.values_list("path", flat=True)) == ["weights.bin"]


def test_expiry_forgets_the_upload_but_never_the_bytes_a_version_refers_to(
    uploaded, editor, django_capture_on_commit_callbacks
):
    register(uploaded, "fraud-detector")
    StagedArtifact.objects.update(uploaded_at=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sweep_orphans", stdout=StringIO())
    assert not StagedArtifact.objects.exists()
    assert len(stored_keys("artifacts")) == len(FILES)
    assert download(uploaded, "registry/fraud-detector/1/MLmodel") == FILES["MLmodel"]
    assert is_missing(register(uploaded, "fraud-detector"))  # the upload is gone


def test_expiry_deletes_the_bytes_of_an_upload_nobody_registered(
    uploaded, django_capture_on_commit_callbacks
):
    StagedArtifact.objects.update(uploaded_at=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sweep_orphans", stdout=StringIO())
    assert stored_keys("artifacts") == []


def test_the_owner_replaces_and_deletes_their_files(uploaded, django_capture_on_commit_callbacks):
    register(uploaded, "fraud-detector")
    with django_capture_on_commit_callbacks(execute=True):
        assert put(uploaded, "team-x/uploads/abc/MLmodel", b"new").json() == {}
    assert download(uploaded, "team-x/uploads/abc/MLmodel") == b"new"
    assert download(uploaded, "registry/fraud-detector/1/MLmodel") == FILES["MLmodel"]  # kept
    with django_capture_on_commit_callbacks(execute=True):
        response = uploaded.delete(f"{ARTIFACTS}/team-x/uploads/abc")
    assert response.json() == {}
    assert not StagedArtifact.objects.exists()
    # What the version refers to stays; the replacement nobody registered is gone.
    assert len(stored_keys("artifacts")) == len(FILES)
    assert download(uploaded, "registry/fraud-detector/1/data/weights.bin")


# ---------------------------------------------------------------------------------------------
# Everyone else


@pytest.fixture
def intruder(uploaded, outsider):
    factories.registered_model(outsider, "their-model")
    return signed_in(outsider)


def test_another_user_cannot_list_someones_upload(intruder):
    for path in ("team-x/uploads/abc", "team-x/uploads", "team-x"):
        assert intruder.get(ARTIFACTS, {"path": path}).json() == {}, path
    root = intruder.get(ARTIFACTS, {"path": ""}).json()
    assert root == {"files": [{"path": "registry", "is_dir": True}]}


def test_another_user_cannot_read_someones_upload(intruder):
    mine = intruder.get(f"{ARTIFACTS}/team-x/uploads/abc/MLmodel")
    nothing = intruder.get(f"{ARTIFACTS}/team-x/uploads/abc/no-such-file")
    assert is_missing(mine) and is_missing(nothing)
    assert mine.json()["message"].replace("MLmodel", "") == nothing.json()["message"].replace(
        "no-such-file", ""
    )


def test_another_user_cannot_overwrite_or_delete_someones_upload(intruder, editor):
    before = list(StagedArtifact.objects.values_list("path", "storage_key", "uploaded_by"))
    assert is_missing(put(intruder, "team-x/uploads/abc/MLmodel", b"evil"))
    assert intruder.delete(f"{ARTIFACTS}/team-x/uploads/abc").json() == {}  # nothing of theirs
    after = list(StagedArtifact.objects.values_list("path", "storage_key", "uploaded_by"))
    assert after == before
    assert len(stored_keys("artifacts")) == len(FILES)  # the refused body was not kept


def test_another_user_cannot_register_from_someones_upload(intruder):
    response = register(intruder, "their-model")
    assert is_missing(response), response.content
    assert not ModelVersion.objects.exists()


def test_another_user_uploading_beside_someone_sees_only_their_own_files(intruder, outsider):
    assert put(intruder, "team-x/uploads/abc/theirs.txt", b"t").json() == {}
    listing = intruder.get(ARTIFACTS, {"path": "team-x/uploads/abc"}).json()
    assert listing == {"files": [{"path": "theirs.txt", "is_dir": False, "file_size": 1}]}
    assert register(intruder, "their-model").status_code == 200
    version = ModelVersion.objects.get()
    assert list(version.artifacts.values_list("path", flat=True)) == ["theirs.txt"]


def test_registering_needs_the_edit_role_on_the_target_model(uploaded, owner):
    factories.registered_model(owner, "not-theirs")
    assert register(uploaded, "not-theirs").status_code == 404
    assert not ModelVersion.objects.exists()


def test_a_superuser_lists_reads_and_registers_anyones_upload(uploaded, superuser):
    root = signed_in(superuser)
    listing = root.get(ARTIFACTS, {"path": "team-x/uploads/abc"}).json()
    assert [f["path"] for f in listing["files"]] == ["data", "MLmodel"]
    assert download(root, "team-x/uploads/abc/MLmodel") == FILES["MLmodel"]
    assert register(root, "fraud-detector").status_code == 200


# ---------------------------------------------------------------------------------------------
# Bad input, and the places that are not uploads


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("model.bin", 400, "Name the file inside a folder"),
        ("registry/fraud-detector/1/model.bin", 400, "read-only"),
        ("team-x/%2e%2e/x", 400, ".."),
    ],
)
def test_bad_upload_paths_are_refused_and_nothing_is_stored(uploaded, path, status, fragment):
    before = StagedArtifact.objects.count()
    response = put(uploaded, path, b"x")
    assert response.status_code == status, response.content
    assert fragment in response.json()["message"]
    assert StagedArtifact.objects.count() == before
    assert len(stored_keys("artifacts")) == len(FILES)


def test_an_upload_path_nobody_uploaded_to_is_not_a_source(uploaded):
    response = register(uploaded, "fraud-detector", "mlflow-artifacts:/team-x/nothing-here")
    assert is_missing(response)


def test_a_version_registered_from_an_upload_in_a_service_call(editor, db):
    """The service, without the HTTP layer: what the views call."""
    model = factories.registered_model(editor, "fraud-detector")
    services.staged_put(
        actor=editor,
        model=None,
        path="up/model.bin",
        incoming=storage.incoming_from_bytes("up/model.bin", b"bytes"),
    )
    version = services.version_register(
        actor=editor, model=model, metadata=parse_metadata({}), upload_prefix="up"
    )
    assert list(version.artifacts.values_list("path", "uploaded_by")) == [("model.bin", editor.pk)]


# ---------------------------------------------------------------------------------------------
# The real client


@pytest.mark.django_db(transaction=True)
def test_the_client_uploads_anywhere_registers_twice_and_downloads_the_same_bytes(
    as_user, people, shared_model, tmp_path
):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    local = tmp_path / "local"
    for path, content in FILES.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(content)
    client = as_user(people["editor"])
    get_artifact_repository(SOURCE).log_artifacts(str(local))
    client.create_registered_model("second-model")
    one = client.create_model_version("fraud-detector", source=SOURCE)
    two = client.create_model_version("fraud-detector", source=SOURCE)
    other = client.create_model_version("second-model", source=SOURCE)
    assert (one.version, two.version, other.version) == ("1", "2", "1")
    for uri in ("models:/fraud-detector/1", "models:/fraud-detector/2", "models:/second-model/1"):
        out = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / uri[8:]))
        got = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in Path(out).rglob("*")
            if p.is_file() and p.name != "registered_model_meta"
        }
        assert got == FILES, uri
    assert len(stored_keys("artifacts")) == len(FILES)  # stored once

    as_user(people["outsider"])
    outsider_repo = get_artifact_repository(SOURCE)
    assert outsider_repo.list_artifacts() == []
    with pytest.raises(MlflowException):
        outsider_repo.download_artifacts("MLmodel", dst_path=str(tmp_path / "stolen"))
    assert not (tmp_path / "stolen" / "MLmodel").exists()


# ---------------------------------------------------------------------------------------------
# Constant work whatever the number of files


@pytest.mark.parametrize("extra", [0, 12])
def test_listing_reading_and_registering_an_upload_take_a_constant_number_of_queries(
    uploaded, extra, django_assert_max_num_queries
):
    for i in range(extra):
        put(uploaded, f"team-x/uploads/abc/more/{i}.bin", b"m")
    with django_assert_max_num_queries(LIST_QUERIES):
        assert uploaded.get(ARTIFACTS, {"path": "team-x/uploads/abc"}).status_code == 200
    with django_assert_max_num_queries(LIST_QUERIES):
        assert uploaded.get(ARTIFACTS, {"path": ""}).status_code == 200
    with django_assert_max_num_queries(READ_QUERIES):
        download(uploaded, "team-x/uploads/abc/MLmodel")
    with django_assert_max_num_queries(REGISTER_QUERIES):
        assert register(uploaded, "fraud-detector").status_code == 200


def test_an_upload_over_the_users_quota_is_refused_and_nothing_is_stored(
    uploaded, editor, settings
):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 10**9  # a model quota in force must not matter here
    used = sum(len(c) for c in FILES.values())
    settings.REGISTRY_QUOTA_USER_BYTES = used + 5
    before = list(StagedArtifact.objects.values_list("path", "storage_key"))
    response = put(uploaded, "team-x/uploads/abc/big.bin", b"x" * 6)
    assert response.status_code == 413, response.content
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert list(StagedArtifact.objects.values_list("path", "storage_key")) == before
    assert len(stored_keys("artifacts")) == len(FILES)
    # Replacing a file of one's own frees its size first: this one fits.
    assert (
        put(uploaded, "team-x/uploads/abc/MLmodel", b"y" * (len(FILES["MLmodel"]) + 5)).json() == {}
    )
