import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from guardian.models import UserObjectPermission

from audit.chain import verify_chain
from audit.models import AuditEvent
from core.errors import Conflict
from models_app import services
from models_app.access import Role, roles_for
from models_app.metadata import parse_metadata
from models_app.models import (
    Artifact,
    Dataset,
    ModelVersion,
    RegisteredModel,
    RegisteredModelUserObjectPermission,
    ReservedName,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_creator_becomes_manager_and_creation_is_audited(owner):
    model = factories.registered_model(owner, "Fraud Detector")
    assert roles_for(owner, model) == set(Role)
    assert model.slug == "fraud-detector"
    event = AuditEvent.objects.get(action="model.created")
    assert event.actor == owner
    assert event.model_id == model.pk
    assert event.after["name"] == "Fraud Detector"


@pytest.mark.parametrize("clash", ["fraud", "FRAUD", "ｆｒａｕｄ", "frаud"])
def test_look_alike_model_name_is_taken(owner, clash):
    factories.registered_model(owner, "Fraud")
    with pytest.raises(ValidationError, match="is taken"):
        factories.registered_model(owner, clash)
    assert RegisteredModel.objects.count() == 1
    assert AuditEvent.objects.filter(action="model.created").count() == 1


def test_version_numbers_are_sequential_and_never_reused(owner):
    model = factories.registered_model(owner)
    v1 = factories.version(model, owner)
    v2 = factories.version(model, owner)
    services.version_delete(actor=owner, version=v2)
    v3 = factories.version(model, owner)
    assert (v1.number, v2.number, v3.number) == (1, 2, 3)
    assert list(model.versions.values_list("number", flat=True)) == [3, 1]


def test_version_carries_its_metadata_and_files(owner):
    model = factories.registered_model(owner)
    parent = factories.version(model, owner)
    version = factories.version(
        model,
        owner,
        metrics=[{"name": "auc", "value": 0.9, "split": "test"}],
        files={"model.bin": b"weights", "conf/params.json": b"{}"},
        params={"depth": 3},
        requirements="numpy==2.0",
        datasets=[{"name": "claims", "role": "train", "uri": "s3://data/claims"}],
        parents=[{"model": model.name, "version": parent.number, "relation": "retrained"}],
    )
    assert version.status == ModelVersion.Status.DRAFT
    assert version.metric_map() == {("auc", "test"): 0.9}
    artifact = version.artifacts.get(path="model.bin")
    assert artifact.size == 7
    with default_storage.open(artifact.storage_key) as f:
        assert f.read() == b"weights"
    assert "model.bin" not in artifact.storage_key  # keys come from server ids only
    assert version.parent_links.get().parent == parent
    assert Dataset.objects.get(name="claims").version_links.get().version == version


def test_file_hash_matches_content(owner):
    import hashlib

    model = factories.registered_model(owner)
    version = factories.version(model, owner, files={"m.bin": b"abc"})
    assert version.artifacts.get().sha256 == hashlib.sha256(b"abc").hexdigest()


def test_parent_in_a_hidden_model_is_not_found(owner, outsider):
    hidden = factories.registered_model(owner, "hidden")
    factories.version(hidden, owner)
    mine = factories.registered_model(outsider, "mine")
    with pytest.raises(ValidationError, match="No version 1 of 'hidden'"):
        factories.version(mine, outsider, parents=[{"model": "hidden", "version": 1}])
    assert not mine.versions.exists()


def test_frozen_version_refuses_changes(owner):
    model = factories.registered_model(owner)
    version = factories.version(model, owner, files={"a.bin": b"1"})
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.IN_REVIEW)
    version.refresh_from_db()
    with pytest.raises(Conflict, match="frozen"):
        services.version_update(actor=owner, version=version, metadata=parse_metadata({}))
    with pytest.raises(Conflict):
        services.artifact_delete(actor=owner, artifact=version.artifacts.get())
    with pytest.raises(Conflict):
        services.version_delete(actor=owner, version=version)
    assert version.artifacts.count() == 1


def test_update_replaces_metadata_and_audits_the_difference(owner):
    model = factories.registered_model(owner)
    version = factories.version(model, owner, metrics={"auc": 0.8})
    services.version_update(
        actor=owner, version=version, metadata=parse_metadata({"metrics": {"auc": 0.85}})
    )
    assert version.metric_map() == {("auc", ""): 0.85}
    event = AuditEvent.objects.get(action="version.updated")
    assert event.before == {"metrics": [{"name": "auc", "value": 0.8, "split": ""}]}
    assert event.after == {"metrics": [{"name": "auc", "value": 0.85, "split": ""}]}


def test_deleting_a_model_removes_files_and_grants(
    owner, viewer, django_capture_on_commit_callbacks
):
    model = factories.registered_model(owner, "fraud")
    factories.grant(viewer, model, "view")
    version = factories.version(model, owner, files={"a.bin": b"1"})
    key = version.artifacts.get().storage_key
    with django_capture_on_commit_callbacks(execute=True):
        services.model_delete(actor=owner, model=model)
    assert not default_storage.exists(key)
    assert not UserObjectPermission.objects.exists()
    assert not RegisteredModelUserObjectPermission.objects.exists()
    root = factories.user("root", is_superuser=True)
    services.name_release(actor=root, reserved=ReservedName.objects.get(name="fraud"))
    again = factories.registered_model(owner, "fraud")  # once an administrator released it
    assert roles_for(viewer, again) == set()


def test_every_change_is_in_the_verified_audit_chain(owner):
    model = factories.registered_model(owner)
    version = factories.version(model, owner, files={"a.bin": b"1"})
    services.model_update(actor=owner, model=model, description="new")
    services.artifact_delete(actor=owner, artifact=version.artifacts.get())
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["model.created", "version.created", "model.updated", "artifact.deleted"]
    assert verify_chain().ok


def test_an_update_that_changes_nothing_writes_nothing(owner):
    """Not even updated_at: the MLflow API answers with it, and its cache trusts the audit log
    to mark every change (registry_site/mlflow_compat/cache.py)."""
    model = factories.registered_model(owner, description="d", tags={"k": "v"})
    updated_at = RegisteredModel.objects.get(pk=model.pk).updated_at
    services.model_update(
        actor=owner, model=model, name=model.name, description="d", tags={"k": "v"}
    )
    assert RegisteredModel.objects.get(pk=model.pk).updated_at == updated_at
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["model.created"]


def test_adding_a_file_at_an_existing_path_is_refused(owner):
    from models_app import storage

    model = factories.registered_model(owner)
    version = factories.version(model, owner, files={"a.bin": b"1"})
    with pytest.raises(ValidationError, match="already has a file at a.bin"):
        services.artifact_add(
            actor=owner, version=version, files=[storage.incoming_from_bytes("a.bin", b"2")]
        )
    assert Artifact.objects.count() == 1


def test_version_can_adopt_files_already_in_storage(owner):
    from django.core.files.base import ContentFile

    from models_app import storage

    model = factories.registered_model(owner)
    key = storage.new_storage_key(model.pk)
    default_storage.save(key, ContentFile(b"staged"))
    import hashlib

    staged = storage.StoredFile("model/weights.bin", key, 6, hashlib.sha256(b"staged").hexdigest())
    version = services.version_create(
        actor=owner, model=model, metadata=parse_metadata({}), adopt=[staged]
    )
    artifact = version.artifacts.get()
    assert (artifact.path, artifact.storage_key, artifact.size) == ("model/weights.bin", key, 6)


def test_model_is_found_by_name_the_way_names_clash(owner, outsider):
    from django.http import Http404

    from models_app.access import get_model_by_name_for_user

    model = factories.registered_model(owner, "Fraud Detector")
    assert get_model_by_name_for_user(owner, "fraud-detector") == model
    assert get_model_by_name_for_user(owner, "FRAUD DETECTOR") == model
    with pytest.raises(Http404):
        get_model_by_name_for_user(outsider, "Fraud Detector")
