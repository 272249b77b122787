"""Files through the API: one streamed PUT per file, hashed on the way in; downloads that never
render; paths that cannot escape the version."""

import hashlib
import os

import pytest
from django.core.files.storage import default_storage
from django.db import OperationalError
from django.http import FileResponse

from approvals import services as workflow
from audit.models import AuditEvent
from models_app import services, storage
from models_app.models import Artifact
from models_app.services import versions as versions_service
from tests import factories
from tests.api.conftest import error_of, good_version
from tests.models_app.test_register import stored_keys

pytestmark = pytest.mark.django_db

BASE = "/api/v1/models/fraud/versions/1/files/"


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def put(client, path: str, content: bytes, **extra):
    return client.put(BASE + path, content, content_type="application/octet-stream", **extra)


@pytest.fixture
def draft(model, editor):
    return factories.version(model, editor)


def test_put_streams_a_file_into_a_draft(api_client, editor, draft, local_storage):
    content = os.urandom(3 * 1024 * 1024 + 17)  # several read chunks
    response = put(api_client(editor), "weights/model.bin", content)
    assert response.status_code == 201, response.content
    assert response.json() == {
        "path": "weights/model.bin",
        "size": len(content),
        "sha256": sha(content),
        "download_url": "http://testserver" + BASE + "weights/model.bin",
    }
    artifact = Artifact.objects.get()
    assert (artifact.path, artifact.size, artifact.sha256) == (
        "weights/model.bin", len(content), sha(content)
    )  # fmt: skip
    assert storage.stored_digest(artifact.storage_key) == (len(content), sha(content))
    assert "model.bin" not in artifact.storage_key  # keys come from server ids only
    assert os.listdir(local_storage / "spool") == []  # the spooled upload was moved
    assert AuditEvent.objects.filter(action="artifact.added", actor=editor).count() == 1


def test_an_empty_body_stores_an_empty_file(api_client, editor, draft):
    response = put(api_client(editor), "empty.txt", b"")
    assert response.status_code == 201
    assert response.json()["size"] == 0


def test_download_is_an_attachment_that_never_renders(api_client, viewer, model, owner):
    factories.version(model, owner, files={"page.html": b"<script>alert(1)</script>"})
    response = api_client(viewer).get(BASE + "page.html")
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"


def test_files_are_listed_with_sizes_digests_and_download_urls(api_client, viewer, model, owner):
    factories.version(model, owner, files={"b.bin": b"bb", "a/a.bin": b"a"})
    body = api_client(viewer).get("/api/v1/models/fraud/versions/1/files").json()
    assert [(f["path"], f["size"], f["sha256"]) for f in body["items"]] == [
        ("a/a.bin", 1, sha(b"a")), ("b.bin", 2, sha(b"bb"))
    ]  # fmt: skip
    assert body["items"][0]["download_url"] == "http://testserver" + BASE + "a/a.bin"


# ---------------------------------------------------------------------------------------------
# Paths that try to leave the version


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("../escape.bin", "'..'"),
        ("a/../../escape.bin", "'..'"),
        ("%2e%2e%2fescape.bin", "'..'"),  # decoded once by the server: ../escape.bin
        ("%2E%2E/escape.bin", "'..'"),
        ("%252e%252e%252fescape.bin", "percent-escapes"),  # encoded twice
        ("..%5Cescape.bin", "forward slashes"),  # ..\escape.bin
        ("a%5Cb.bin", "forward slashes"),
        ("/etc/passwd", "relative"),  # .../files//etc/passwd
        ("C:/Windows/x.bin", "relative"),
        ("a%00b.bin", "NUL"),
        ("a/./b.bin", "'.'"),
        ("a//b.bin", "empty"),
        ("line%0Abreak.bin", "control characters"),
    ],
)
def test_paths_outside_the_version_are_400_and_nothing_is_stored(
    api_client, editor, draft, local_storage, address, says
):
    response = put(api_client(editor), address, b"payload")
    assert response.status_code == 400, response.content
    assert says in error_of(response)["message"]
    assert not Artifact.objects.exists()
    assert stored_keys() == []
    assert os.listdir(local_storage / "spool") == []
    assert not AuditEvent.objects.filter(action="artifact.added").exists()


def test_traversal_in_a_download_address_finds_nothing(api_client, viewer, model, owner):
    factories.version(model, owner, files={"model.bin": b"w"})
    for address in ("../model.bin", "%2e%2e%2fmodel.bin", "x/../model.bin"):
        assert api_client(viewer).get(BASE + address).status_code == 404


# ---------------------------------------------------------------------------------------------
# Refusals


def test_oversize_put_is_413_before_the_body_is_read(
    api_client, editor, draft, settings, monkeypatch
):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10

    def must_not_read(*args, **kwargs):
        raise AssertionError("the body was read")

    monkeypatch.setattr(storage, "spool_stream", must_not_read)
    response = put(api_client(editor), "big.bin", b"x" * 11)
    assert response.status_code == 413
    assert error_of(response) == {
        "code": "too_large", "message": "Uploads are limited to 10 bytes."
    }  # fmt: skip
    assert not Artifact.objects.exists()


def test_upload_at_the_limit_is_accepted(api_client, editor, draft, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10
    assert put(api_client(editor), "ok.bin", b"x" * 10).status_code == 201


def test_files_of_a_submitted_version_are_frozen(api_client, editor, model, local_storage):
    version = good_version(model, editor)
    workflow.version_submit(actor=editor, version=version)
    c = api_client(editor)
    response = put(c, "late.bin", b"too late")
    assert response.status_code == 409
    assert "frozen" in error_of(response)["message"]
    assert c.delete(BASE + "model.bin").status_code == 409
    assert list(version.artifacts.values_list("path", flat=True)) == ["model.bin"]
    assert len(stored_keys()) == 1


def test_a_path_already_taken_is_400(api_client, editor, draft):
    c = api_client(editor)
    assert put(c, "model.bin", b"one").status_code == 201
    response = put(c, "model.bin", b"two")
    assert response.status_code == 400
    assert "already has a file" in error_of(response)["message"]
    assert Artifact.objects.get().sha256 == sha(b"one")


def test_viewer_cannot_upload_or_delete(api_client, viewer, draft):
    c = api_client(viewer)
    assert put(c, "x.bin", b"x").status_code == 403
    assert not Artifact.objects.exists()


def test_editor_deletes_a_draft_file(api_client, editor, model, django_capture_on_commit_callbacks):
    factories.version(model, editor, files={"model.bin": b"w", "keep.bin": b"k"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(editor).delete(BASE + "model.bin")
    assert response.status_code == 204
    assert list(Artifact.objects.values_list("path", flat=True)) == ["keep.bin"]
    assert len(stored_keys()) == 1


def test_download_on_s3_redirects_to_a_presigned_url(api_client, viewer, model, owner, s3_storage):
    factories.version(model, owner, files={"model.bin": b"weights"})
    response = api_client(viewer).get(BASE + "model.bin")
    assert response.status_code == 302
    assert "Signature=" in response["Location"]
    assert "response-content-disposition=attachment" in response["Location"]
    assert default_storage.exists(Artifact.objects.get().storage_key)


def test_an_upload_to_a_model_deleted_meanwhile_is_a_409_and_leaves_no_file(
    api_client, editor, owner, model, draft, local_storage, monkeypatch
):
    """The model is deleted while the upload's file is being stored (issue 15, F14)."""
    store = storage.store

    def store_then_delete(key, incoming):
        store(key, incoming)
        services.model_delete(actor=owner, model=model)

    monkeypatch.setattr(storage, "store", store_then_delete)
    response = put(api_client(editor), "model.bin", b"weights")
    assert response.status_code == 409, response.content
    assert error_of(response) == {"code": "conflict", "message": "Version 1 was deleted meanwhile."}
    assert Artifact.objects.count() == 0
    assert stored_keys() == []
    assert os.listdir(local_storage / "spool") == []


@pytest.mark.parametrize("refusal", ["path taken", "database down"])
def test_a_refused_upload_leaves_no_spooled_file(
    api_client, editor, draft, local_storage, monkeypatch, refusal
):
    """A refusal before the file is stored (bad input, or the database going down: issue 15,
    F7) does not leave the spooled upload behind."""
    client = api_client(editor)
    assert put(client, "model.bin", b"weights").status_code == 201
    if refusal == "path taken":
        path, expected = "model.bin", 400
    else:

        def down(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(versions_service, "require", down)
        path, expected = "other.bin", 503
    response = put(client, path, b"other weights")
    assert response.status_code == expected, response.content
    assert os.listdir(local_storage / "spool") == []
