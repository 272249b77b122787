"""The same upload, download, clean-up and verification paths against a real S3 server (moto,
on loopback) through django-storages."""

import io
import zipfile
from datetime import timedelta

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit import chain
from tests import factories
from tests.models_app.test_register import (
    assert_nothing_saved,
    sha,
    spooled_files,
    stored_keys,
    version_data,
)

pytestmark = pytest.mark.django_db

FILES = {"model.bin": bytes(range(256)) * 4096, "conf/params.json": b'{"depth": 3}'}


@pytest.fixture
def s3(s3_storage, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    return s3_storage


@pytest.fixture
def model(owner, editor, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    factories.grant(viewer, model, "view")
    return model


def register(client, model, files=FILES):
    data = version_data(
        files={p.rsplit("/", 1)[-1]: c for p, c in files.items()},
        paths=list(files),
        metrics=[{"name": "auc", "value": "0.9", "split": ""}],
    )
    return client.post(reverse("models_app:version_create", args=[model.slug]), data)


def test_register_through_the_form_and_download_from_s3(
    s3, client_for, editor, viewer, model, settings
):
    assert register(client_for(editor), model).status_code == 302
    version = model.versions.get()
    keys = sorted(version.artifacts.values_list("storage_key", flat=True))
    assert stored_keys() == keys
    assert all(k.startswith(f"artifacts/{model.pk}/") for k in keys)
    assert spooled_files(settings) == []
    for path, content in FILES.items():
        url = reverse("models_app:artifact_download", args=[model.slug, 1, path])
        response = client_for(viewer).get(url)
        assert response.status_code == 302
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Location"].startswith(s3.endpoint_url)
        fetched = requests.get(response["Location"], timeout=10)
        assert fetched.status_code == 200
        assert sha(fetched.content) == sha(content) == version.artifacts.get(path=path).sha256
        name = path.rsplit("/", 1)[-1]
        assert fetched.headers["Content-Disposition"] == f'attachment; filename="{name}"'
        assert fetched.headers["Content-Type"] == "application/octet-stream"


def test_zip_from_s3_holds_every_file_and_checksums(s3, client_for, editor, viewer, model):
    register(client_for(editor), model)
    response = client_for(viewer).get(reverse("models_app:version_zip", args=[model.slug, 1]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    for path, content in FILES.items():
        assert archive.read(path) == content
    assert sorted(archive.read("SHA256SUMS").decode().splitlines()) == sorted(
        f"{sha(c)}  {p}" for p, c in FILES.items()
    )


def test_failed_upload_leaves_no_key_in_the_bucket(
    s3, client_for, editor, model, settings, monkeypatch
):
    from models_app import storage

    real_store, calls = storage.store, []

    def flaky_store(key, incoming):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("S3 went away")
        real_store(key, incoming)

    monkeypatch.setattr(storage, "store", flaky_store)
    with pytest.raises(OSError):
        register(client_for(editor), model)
    assert_nothing_saved(model, settings)


def test_database_error_after_upload_removes_the_keys(
    s3, client_for, editor, model, settings, monkeypatch
):

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(chain, "record", broken)
    with pytest.raises(RuntimeError):
        register(client_for(editor), model)
    assert_nothing_saved(model, settings)


def test_upload_over_the_limit_is_refused_on_s3_too(s3, client_for, editor, model, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 1000
    assert register(client_for(editor), model).status_code == 413
    assert_nothing_saved(model, settings)


def test_sweep_orphans_on_s3(s3, client_for, editor, model):
    register(client_for(editor), model)
    referenced = stored_keys()
    stray = s3.save(f"artifacts/{model.pk}/stray", ContentFile(b"x"))
    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)  # default: an hour; the stray is too recent
    assert stored_keys() == sorted([*referenced, stray])
    call_command("sweep_orphans", "--min-age-minutes", "0", stdout=out)
    assert stored_keys() == referenced
    assert f"deleted {stray}" in out.getvalue()


def test_s3_modified_time_is_aware_for_the_age_check(s3):
    from django.utils import timezone

    key = s3.save("artifacts/1/x", ContentFile(b"x"))
    assert abs(timezone.now() - s3.get_modified_time(key)) < timedelta(minutes=5)


def test_verify_artifacts_detects_tampering_on_s3(s3, client_for, editor, model):
    register(client_for(editor), model)
    call_command("verify_artifacts", stdout=io.StringIO(), stderr=io.StringIO())
    artifact = model.versions.get().artifacts.get(path="conf/params.json")
    s3.bucket.Object(artifact.storage_key).put(Body=b'{"depth": 4}')
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_artifacts", stdout=out, stderr=io.StringIO())
    assert "fraud v1 conf/params.json: SHA-256 MISMATCH" in out.getvalue()


def test_register_version_command_on_s3(s3, model, tmp_path):
    folder = tmp_path / "export"
    (folder / "conf").mkdir(parents=True)
    for path, content in FILES.items():
        (folder / path).write_bytes(content)
    call_command("register_version", "fraud", str(folder), stdout=io.StringIO())
    version = model.versions.get()
    assert dict(version.artifacts.values_list("path", "sha256")) == {
        p: sha(c) for p, c in FILES.items()
    }
    assert stored_keys() == sorted(version.artifacts.values_list("storage_key", flat=True))
