"""Downloading files and zips from local storage."""

import io
import zipfile

import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse

from tests import factories
from tests.models_app.test_register import sha, use_local_storage

pytestmark = pytest.mark.django_db

FILES = {
    "model.bin": bytes(range(256)) * 10_000,  # 2.5 MB: several read chunks
    "page.html": b"<script>alert(1)</script>",
    "conf/params.json": b'{"depth": 3}',
    "empty.txt": b"",
}


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def version(owner, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(viewer, model, "view")
    return factories.version(model, owner, files=FILES)


def download_url(version, path: str) -> str:
    return reverse("models_app:artifact_download", args=[version.model.slug, version.number, path])


def zip_url(version) -> str:
    return reverse("models_app:version_zip", args=[version.model.slug, version.number])


@pytest.mark.parametrize("path", sorted(FILES))
def test_file_downloads_as_an_attachment_that_never_renders(client_for, viewer, version, path):
    response = client_for(viewer).get(download_url(version, path))
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    name = path.rsplit("/", 1)[-1]
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    content = b"".join(response.streaming_content)
    assert sha(content) == sha(FILES[path]) == version.artifacts.get(path=path).sha256


def test_missing_file_is_404(client_for, viewer, version):
    assert client_for(viewer).get(download_url(version, "nope.bin")).status_code == 404


def test_zip_streams_every_file_and_their_checksums(client_for, viewer, version):
    response = client_for(viewer).get(zip_url(version))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="fraud-v1.zip"'
    assert response["X-Content-Type-Options"] == "nosniff"
    chunks = list(response.streaming_content)
    assert len(chunks) > 3  # produced piece by piece, not built whole
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted([*FILES, "SHA256SUMS"])
    for path, content in FILES.items():
        assert archive.read(path) == content
    sums = archive.read("SHA256SUMS").decode().splitlines()
    assert sorted(sums) == sorted(f"{sha(c)}  {p}" for p, c in FILES.items())


def test_zip_keeps_a_file_that_is_itself_named_sha256sums(client_for, owner):
    model = factories.registered_model(owner, "sums")
    version = factories.version(model, owner, files={"SHA256SUMS": b"mine"})
    response = client_for(owner).get(zip_url(version))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.read("SHA256SUMS") == b"mine"
    assert archive.read("SHA256SUMS.registry").decode() == f"{sha(b'mine')}  SHA256SUMS\n"


def test_zip_of_a_version_without_files_holds_only_the_checksums(client_for, owner):
    model = factories.registered_model(owner, "empty")
    version = factories.version(model, owner)
    response = client_for(owner).get(zip_url(version))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["SHA256SUMS"]


def test_downloads_refuse_post(client_for, viewer, version):
    c = client_for(viewer)
    assert c.post(download_url(version, "model.bin")).status_code == 405
    assert c.post(zip_url(version)).status_code == 405
