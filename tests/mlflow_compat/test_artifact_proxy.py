"""The artifact proxy's answers as the client reads them: listings of basenames, ``{}`` for a
file or a missing folder, raw bytes without a Content-Encoding, 404 JSON for a missing file."""

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def viewer_client(owner, viewer):
    model = factories.registered_model(owner, "fraud-detector")
    factories.grant(viewer, model, "view")
    factories.version(
        model,
        owner,
        files={"MLmodel": b"m", "data/weights.bin": b"w" * 10, "data/x.tar.gz": b"\x1f\x8b"},
    )
    client = Client()
    client.force_login(viewer)
    return client


def test_a_version_folder_lists_basenames_with_sizes_and_subfolders(viewer_client):
    listing = viewer_client.get(ARTIFACTS, {"path": "registry/fraud-detector/1"}).json()
    assert listing == {
        "files": [
            {"path": "data", "is_dir": True},
            {"path": "MLmodel", "is_dir": False, "file_size": 1},
        ]
    }
    sub = viewer_client.get(ARTIFACTS, {"path": "registry/fraud-detector/1/data"}).json()
    assert [f["path"] for f in sub["files"]] == ["weights.bin", "x.tar.gz"]


def test_a_file_a_missing_folder_or_version_lists_as_empty(viewer_client):
    for path in (
        "registry/fraud-detector/1/MLmodel",
        "registry/fraud-detector/1/nothing",
        "registry/fraud-detector/9",
        "elsewhere/entirely",
    ):
        response = viewer_client.get(ARTIFACTS, {"path": path})
        assert (response.status_code, response.json()) == (200, {}), path
    model_missing = viewer_client.get(ARTIFACTS, {"path": "registry/no-such-model/1"})
    assert model_missing.status_code == 404


def test_downloads_are_raw_bytes_never_content_encoded(viewer_client):
    response = viewer_client.get(f"{ARTIFACTS}/registry/fraud-detector/1/data/x.tar.gz")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x1f\x8b"
    assert "Content-Encoding" not in response
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == "2"


def test_a_missing_file_is_a_404_with_an_mlflow_error(viewer_client):
    response = viewer_client.get(f"{ARTIFACTS}/registry/fraud-detector/1/nope.bin")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_viewers_cannot_see_staged_uploads(viewer_client):
    response = viewer_client.get(ARTIFACTS, {"path": "registry/fraud-detector/upload-1"})
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
