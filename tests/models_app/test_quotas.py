"""Storage quotas per user and per model (issue 15, finding 20): every upload surface refuses
what does not fit (413 bigger than what is left, 507 when nothing is left) and stores nothing;
staged MLflow uploads count."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import MULTIPART_CONTENT
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import QuotaExceeded
from models_app import quotas, services
from models_app.metadata import parse_metadata
from models_app.models import Artifact, ModelVersion
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.mlflow_compat.models import StagedArtifact
from registry_site.tokens import token_create
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage, version_data
from tests.models_app.test_uploads import MustNotBeRead
from tracking import services as tracking_services
from tracking.models import TrackedFile

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/registry/fraud"


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner, editor):
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    return model


@pytest.fixture
def draft(model, editor):
    return factories.version(model, editor)


def signed_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


_tokens = iter(range(10**6))


def with_token(user) -> Client:
    secret = token_create(actor=user, user=user, name=f"quota-{next(_tokens)}", scope="write")[1]
    return Client(headers={"Authorization": f"Bearer {secret}"})


def add_files(user, version, files: dict[str, bytes]):
    url = reverse("models_app:artifact_add", args=[version.model.slug, version.number])
    return signed_in(user).post(
        url, {"files": [SimpleUploadedFile(n, c) for n, c in files.items()]}
    )


def stage(user, path: str, content: bytes):
    return with_token(user).generic(
        "PUT", f"{ARTIFACTS}/{path}", content, content_type="application/octet-stream"
    )


# ---------------------------------------------------------------------------------------------
# The dashboard


def test_dashboard_refuses_a_file_bigger_than_what_is_left_with_413(
    settings, editor, draft, django_capture_on_commit_callbacks
):
    settings.REGISTRY_QUOTA_USER_BYTES = 100
    assert add_files(editor, draft, {"a.bin": b"a" * 60}).status_code == 302
    keys = stored_keys()
    with django_capture_on_commit_callbacks(execute=True):
        response = add_files(editor, draft, {"b.bin": b"b" * 50})
    assert response.status_code == 413
    text = response.content.decode()
    assert "larger than what is left of your storage quota" in text
    assert "60 bytes of 100 bytes are used, 40 bytes left" in text
    assert "An administrator can raise the limit (REGISTRY_QUOTA_USER_BYTES)" in text
    assert list(draft.artifacts.values_list("path", flat=True)) == ["a.bin"]
    assert stored_keys() == keys  # no orphan file


def test_dashboard_answers_507_once_the_quota_is_used_up(settings, editor, draft):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    assert add_files(editor, draft, {"a.bin": b"a" * 10}).status_code == 302
    response = add_files(editor, draft, {"b.bin": b"b"})
    assert response.status_code == 507
    assert "Your storage quota is used up: 10 bytes of 10 bytes" in response.content.decode()
    assert draft.artifacts.count() == 1 and len(stored_keys()) == 1


def test_per_model_quota_counts_every_uploader(settings, owner, editor, model):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 100
    factories.version(model, owner, files={"a.bin": b"a" * 70})
    url = reverse("models_app:version_create", args=[model.slug])
    response = signed_in(editor).post(url, version_data(files={"b.bin": b"b" * 40}))
    assert response.status_code == 413
    assert "the model fraud&#x27;s storage quota" in response.content.decode()
    assert "REGISTRY_QUOTA_MODEL_BYTES" in response.content.decode()
    assert model.versions.count() == 1 and len(stored_keys()) == 1


def test_a_declared_body_over_the_quota_is_refused_before_reading(settings, editor, draft):
    settings.REGISTRY_QUOTA_USER_BYTES = 1024
    url = reverse("models_app:artifact_add", args=[draft.model.slug, draft.number])
    response = signed_in(editor).generic(
        "POST",
        url,
        b"",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH=str(5 * 1024**3),
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == 413
    assert "is larger than what is left" in response.content.decode()
    assert stored_keys() == []


def test_account_page_shows_usage_against_the_quota(settings, editor, draft):
    settings.REGISTRY_QUOTA_USER_BYTES = 2048
    add_files(editor, draft, {"a.bin": b"a" * 1024})
    page = signed_in(editor).get(reverse("profile")).content.decode()
    assert "1.0\xa0KB of your 2.0\xa0KB quota (50%)" in page


# ---------------------------------------------------------------------------------------------
# The JSON API


def test_json_api_upload_over_quota_is_413_then_507(settings, editor, draft):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    url = f"/api/v1/models/fraud/versions/{draft.number}/files/"
    c = with_token(editor)
    too_big = c.put(url + "a.bin", b"a" * 11, content_type="application/octet-stream")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "over_quota"
    assert (
        c.put(url + "b.bin", b"b" * 10, content_type="application/octet-stream").status_code == 201
    )
    full = c.put(url + "c.bin", b"c", content_type="application/octet-stream")
    assert full.status_code == 507
    assert full.json()["error"]["code"] == "insufficient_storage"
    assert "used up" in full.json()["error"]["message"]
    assert list(draft.artifacts.values_list("path", flat=True)) == ["b.bin"]
    assert len(stored_keys()) == 1


def test_json_api_refuses_a_declared_length_over_quota_unread(settings, editor, draft):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 10
    url = f"/api/v1/models/fraud/versions/{draft.number}/files/a.bin"
    response = with_token(editor).generic(
        "PUT",
        url,
        b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(5 * 1024**3),
        **{"wsgi.input": MustNotBeRead()},
    )
    assert response.status_code == 413
    assert stored_keys() == []


# ---------------------------------------------------------------------------------------------
# The MLflow artifact proxy and staged uploads


def test_mlflow_put_over_quota_is_refused_and_nothing_is_staged(settings, editor, model):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    response = stage(editor, "up/a.bin", b"a" * 11)
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert stage(editor, "up/b.bin", b"b" * 10).status_code == 200
    full = stage(editor, "up/c.bin", b"c")
    assert full.status_code == 507 and "used up" in full.json()["message"]
    assert list(StagedArtifact.objects.values_list("path", flat=True)) == ["up/b.bin"]
    assert len(stored_keys()) == 1


def test_staged_uploads_count_against_user_and_model(settings, editor, owner, draft):
    stage(editor, "up/a.bin", b"a" * 8)
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    assert add_files(editor, draft, {"b.bin": b"b" * 3}).status_code == 413
    settings.REGISTRY_QUOTA_USER_BYTES = 0
    settings.REGISTRY_QUOTA_MODEL_BYTES = 10
    assert add_files(owner, draft, {"b.bin": b"b" * 3}).status_code == 413
    assert not draft.artifacts.exists()


def test_replacing_a_staged_file_counts_only_the_new_size(settings, editor, model):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    assert stage(editor, "up/a.bin", b"a" * 8).status_code == 200
    assert stage(editor, "up/a.bin", b"b" * 9).status_code == 200
    assert StagedArtifact.objects.get().size == 9
    assert stage(editor, "up/c.bin", b"c" * 2).status_code == 413  # 9 + 2 > 10


def test_registering_staged_files_does_not_count_them_twice(settings, editor, model):
    settings.REGISTRY_QUOTA_USER_BYTES = 10
    settings.REGISTRY_QUOTA_MODEL_BYTES = 10
    assert stage(editor, "up/a.bin", b"a" * 10).status_code == 200
    version = mlflow_services.version_register(
        actor=editor, model=model, metadata=parse_metadata({}), staged_prefix="up"
    )
    assert version.artifacts.get().uploaded_by == editor
    assert quotas.user_usage(editor.pk) == 10 and quotas.model_usage(model.pk) == 10


# ---------------------------------------------------------------------------------------------
# Stored bytes several versions share: counted once per user and once per model


def upload(user, path: str, content: bytes):
    """An MLflow upload outside registry/ (registrable by reference, as often as wanted)."""
    response = with_token(user).generic(
        "PUT",
        f"/api/2.0/mlflow-artifacts/artifacts/{path}",
        content,
        content_type="application/octet-stream",
    )
    assert response.status_code == 200, response.content


def register_upload(user, model, prefix: str = "team-x/up"):
    return mlflow_services.version_register(
        actor=user, model=model, metadata=parse_metadata({}), upload_prefix=prefix
    )


def test_the_same_upload_registered_twice_counts_once_for_the_user_and_the_model(editor, model):
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    first, second = register_upload(editor, model), register_upload(editor, model)
    assert first.artifacts.get().storage_key == second.artifacts.get().storage_key
    assert quotas.user_usage(editor.pk) == 10
    assert quotas.model_usage(model.pk) == 10


def test_another_model_registering_the_same_bytes_counts_them_for_itself(owner, editor, model):
    other = factories.registered_model(owner, "churn")
    factories.grant(editor, other, "edit")
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    register_upload(editor, model)
    register_upload(editor, other)
    register_upload(editor, other)
    assert quotas.model_usage(model.pk) == 10
    assert quotas.model_usage(other.pk) == 10
    assert quotas.user_usage(editor.pk) == 10


def test_deleting_one_of_two_versions_sharing_bytes_leaves_the_usage_unchanged(editor, model):
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    first = register_upload(editor, model)
    register_upload(editor, model)
    before = (quotas.user_usage(editor.pk), quotas.model_usage(model.pk))
    services.version_delete(actor=editor, version=first)
    assert (quotas.user_usage(editor.pk), quotas.model_usage(model.pk)) == before == (10, 10)


def test_registering_the_same_bytes_again_leaves_the_rest_of_the_quota_free(
    settings, editor, model
):
    settings.REGISTRY_QUOTA_USER_BYTES = 15
    settings.REGISTRY_QUOTA_MODEL_BYTES = 15
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    register_upload(editor, model)
    draft = register_upload(editor, model)
    # 10 bytes stored: 5 left for the user and the model, however often they were registered.
    assert add_files(editor, draft, {"b.bin": b"b" * 5}).status_code == 302
    assert add_files(editor, draft, {"c.bin": b"c"}).status_code == 507
    assert quotas.user_usage(editor.pk) == quotas.model_usage(model.pk) == 15


def test_a_runs_file_registered_as_versions_counts_once_for_its_uploader(editor, model):
    experiment = tracking_services.experiment_create(actor=editor, name="churn")
    run = tracking_services.run_create(actor=editor, experiment=experiment, name="nightly")
    upload(editor, f"{experiment.pk}/{run.pk}/artifacts/a.bin", b"a" * 10)  # the run's file
    file_ids = list(TrackedFile.objects.values_list("pk", flat=True))
    for _ in range(2):
        mlflow_services.version_register_from_tracking(
            actor=editor,
            model=model,
            metadata=parse_metadata({}),
            file_ids=file_ids,
            prefix="",
            source={"source": f"runs:/{run.pk}", "run": run.pk, "logged_model": ""},
        )
    assert quotas.user_usage(editor.pk) == 10  # the run's file, the versions' files: one key
    assert quotas.model_usage(model.pk) == 10


# ---------------------------------------------------------------------------------------------
# Files a version adopts (uploads, a run's files): charged to their uploader already, they count
# against the model's quota when the model holds their bytes for the first time


def run_file(user, content: bytes) -> list[int]:
    """A new run with one file of ``content`` (its uploader charged): the file's ids."""
    experiment = tracking_services.experiment_create(actor=user, name=f"exp-{next(_tokens)}")
    run = tracking_services.run_create(actor=user, experiment=experiment, name="nightly")
    upload(user, f"{experiment.pk}/{run.pk}/artifacts/a.bin", content)
    return list(TrackedFile.objects.filter(run=run).values_list("pk", flat=True))


def register_run(user, model, file_ids: list[int]):
    return mlflow_services.version_register_from_tracking(
        actor=user,
        model=model,
        metadata=parse_metadata({}),
        file_ids=file_ids,
        prefix="",
        source={"source": "runs:/x", "run": "x", "logged_model": ""},
    )


def test_a_runs_files_the_model_has_no_room_for_are_refused_and_nothing_is_written(
    settings, editor, model
):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 15
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    register_upload(editor, model)
    files = run_file(editor, b"r" * 6)
    events, keys = AuditEvent.objects.count(), stored_keys()
    with pytest.raises(QuotaExceeded) as larger:
        register_run(editor, model, files)
    assert larger.value.status == 413 and "5 bytes left" in str(larger.value)
    settings.REGISTRY_QUOTA_MODEL_BYTES = 10
    with pytest.raises(QuotaExceeded) as used_up:
        register_run(editor, model, files)
    assert used_up.value.status == 507
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert AuditEvent.objects.count() == events
    assert stored_keys() == keys  # the run's file stays its owner's
    assert quotas.model_usage(model.pk) == 10


def test_files_the_model_already_holds_register_again_at_its_limit(settings, editor, model):
    files = run_file(editor, b"r" * 10)
    register_run(editor, model, files)
    upload(editor, "team-x/up/a.bin", b"a" * 5)
    register_upload(editor, model)
    new_file = run_file(editor, b"n")
    settings.REGISTRY_QUOTA_MODEL_BYTES = 15
    settings.REGISTRY_QUOTA_USER_BYTES = 16  # the uploader is not charged again either
    register_run(editor, model, files)
    register_upload(editor, model)
    assert ModelVersion.objects.filter(model=model).count() == 4
    assert (quotas.model_usage(model.pk), quotas.user_usage(editor.pk)) == (15, 16)
    with pytest.raises(QuotaExceeded):  # but a file new to the model does not fit
        register_run(editor, model, new_file)


def test_a_model_under_its_limit_takes_adopted_files_and_its_usage_grows_by_them(
    settings, editor, model
):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 25
    register_run(editor, model, run_file(editor, b"r" * 10))
    upload(editor, "team-x/up/a.bin", b"a" * 10)
    register_upload(editor, model)
    assert quotas.model_usage(model.pk) == 20
    upload(editor, "team-x/more/b.bin", b"b" * 6)
    with pytest.raises(QuotaExceeded):  # 5 bytes left
        register_upload(editor, model, "team-x/more")
    assert ModelVersion.objects.filter(model=model).count() == 2


def test_quotas_off_by_default_limit_nothing(editor, draft):
    assert add_files(editor, draft, {"a.bin": b"a" * 5000}).status_code == 302
    assert Artifact.objects.get().uploaded_by == editor
