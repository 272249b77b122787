"""The upload handler: size limit (early and while reading), hashing, temporary files."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from models_app.uploads import MULTIPART_ALLOWANCE, HashingUploadHandler
from tests import factories
from tests.models_app.test_register import (
    assert_nothing_saved,
    sha,
    spooled_files,
    stored_keys,
    use_local_storage,
    version_data,
)

pytestmark = pytest.mark.django_db

LIMIT = 1000


@pytest.fixture(autouse=True)
def small_limit(settings, tmp_path):
    use_local_storage(settings, tmp_path)
    settings.REGISTRY_MAX_UPLOAD_BYTES = LIMIT


@pytest.fixture
def model(owner, editor):
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    return model


class MustNotBeRead(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = readinto = read


def test_declared_length_over_the_limit_is_refused_before_reading(client_for, editor, model):
    url = reverse("models_app:version_create", args=[model.slug])
    response = client_for(editor).generic(
        "POST",
        url,
        b"",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH=str(10 * 1024**3),
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == 413
    assert "Uploads are limited to 1,000 bytes" in response.content.decode()
    assert_nothing_saved(model)


def test_body_growing_past_the_limit_is_refused_while_reading(client_for, editor, model, settings):
    # Under limit + allowance as a whole, so the early check lets it through; the files
    # themselves add up to more than the limit.
    def data():
        return version_data(files={"a.bin": b"a" * 600, "b.bin": b"b" * 600})

    assert len(encode_multipart(BOUNDARY, data())) < LIMIT + MULTIPART_ALLOWANCE
    url = reverse("models_app:version_create", args=[model.slug])
    response = client_for(editor).post(url, data())
    assert response.status_code == 413
    assert "Uploads are limited to 1,000 bytes" in response.content.decode()
    assert_nothing_saved(model, settings)  # no row, no stored key, no spooled temp file


def test_upload_over_the_limit_to_a_draft_is_refused(client_for, editor, owner, model, settings):
    version = factories.version(model, owner)
    url = reverse("models_app:artifact_add", args=[model.slug, version.number])
    response = client_for(editor).post(url, {"files": [SimpleUploadedFile("a", b"a" * 1001)]})
    assert response.status_code == 413
    assert not version.artifacts.exists()
    assert stored_keys() == [] and spooled_files(settings) == []


def test_upload_just_under_the_limit_is_accepted(client_for, editor, model):
    data = version_data(files={"a.bin": b"a" * 500, "b.bin": b"b" * 500})
    response = client_for(editor).post(
        reverse("models_app:version_create", args=[model.slug]), data
    )
    assert response.status_code == 302
    assert sorted(model.versions.get().artifacts.values_list("size", flat=True)) == [500, 500]


def test_anonymous_upload_is_sent_to_login_without_reading_the_body(anonymous, model):
    url = reverse("models_app:version_create", args=[model.slug])
    response = anonymous.generic(
        "POST",
        url,
        b"",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH="100",
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_handler_hashes_and_counts_while_spooling(rf, settings):
    content = b"0123456789" * 20_000  # several 64 KiB chunks
    request = rf.post("/", {"files": [SimpleUploadedFile("big.bin", content)]})
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10**6
    request.upload_handlers = [HashingUploadHandler(request)]
    uploaded = request.FILES["files"]
    assert uploaded.size == len(content)
    assert uploaded.sha256 == sha(content)
    with open(uploaded.temporary_file_path(), "rb") as f:
        assert f.read() == content
    uploaded.close()


def test_handler_stores_small_files_on_disk_too(rf):
    request = rf.post("/", {"files": [SimpleUploadedFile("tiny.txt", b"hi")]})
    request.upload_handlers = [HashingUploadHandler(request)]
    uploaded = request.FILES["files"]
    assert uploaded.temporary_file_path()
    assert uploaded.sha256 == sha(b"hi")
    uploaded.close()


def test_form_post_is_csrf_protected(editor, model):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(editor)
    url = reverse("models_app:version_create", args=[model.slug])
    response = c.post(url, version_data(files={"a.bin": b"A"}))
    assert response.status_code == 403
    assert_nothing_saved(model)


def test_form_post_with_a_csrf_token_passes(editor, model):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(editor)
    url = reverse("models_app:version_create", args=[model.slug])
    c.get(url)
    token = c.cookies["csrftoken"].value
    data = {**version_data(files={"a.bin": b"A"}), "csrfmiddlewaretoken": token}
    assert c.post(url, data).status_code == 302
    assert model.versions.get().artifacts.get().sha256 == sha(b"A")


@pytest.mark.parametrize(("persona", "status"), [("outsider", 404), ("viewer", 403)])
def test_refused_users_are_answered_without_reading_the_body(
    client_for, model, persona, status, request
):
    user = request.getfixturevalue(persona)
    factories.grant(request.getfixturevalue("viewer"), model, "view")
    response = client_for(user).generic(
        "POST",
        reverse("models_app:version_create", args=[model.slug]),
        b"",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH="100",
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == status


def test_a_frozen_draft_is_refused_without_reading_the_body(client_for, editor, owner, model):
    from models_app.models import ModelVersion

    version = factories.version(model, owner)
    ModelVersion.objects.filter(pk=version.pk).update(status="approved")
    response = client_for(editor).generic(
        "POST",
        reverse("models_app:artifact_add", args=[model.slug, version.number]),
        b"",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH="100",
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == 409
