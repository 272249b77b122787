"""manage.py check_invariants: a consistent registry passes; each planted violation is named
and the command exits non-zero."""

import io
import os
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from approvals import services as approvals
from approvals.models import Alias
from audit.models import AuditEvent
from models_app import summary
from models_app.models import Artifact, ModelVersion, RegisteredModel, VersionDataset
from registry_site import invariants
from tests import factories
from tests.audit.test_chain import bypass_append_only_trigger
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def registry(owner, reviewer):
    """A model with a draft, an approved version holding production, and files."""
    model = factories.registered_model(owner, "fraud")
    factories.grant(reviewer, model, "review")
    draft = factories.version(model, owner, files={"a.bin": b"AAAA"})
    approved = factories.version(
        model,
        owner,
        description="Retrained",
        metrics=[{"name": "auc", "value": 0.9, "split": "test"}],
        datasets=[{"name": "claims", "role": "train"}],
        files={"b.bin": b"BBBBBB"},
    )
    approvals.version_submit(actor=owner, version=approved)
    approvals.review_approve(actor=reviewer, version=approved)
    approved.refresh_from_db()
    approvals.alias_set(actor=owner, model=model, name="production", version=approved)
    return model, draft, approved


def run() -> str:
    out = io.StringIO()
    call_command("check_invariants", stdout=out)
    return out.getvalue()


def violations(**kwargs) -> list[str]:
    return [str(v) for v in invariants.check_all(**kwargs)]


def age(key: str, minutes: int) -> None:
    then = (timezone.now() - timedelta(minutes=minutes)).timestamp()
    os.utime(default_storage.path(key), (then, then))


def test_a_consistent_registry_passes(registry):
    assert violations(grace=timedelta(0)) == []
    assert "All invariants hold." in run()


def test_seeded_demo_data_passes(db):
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    assert violations(grace=timedelta(0)) == []


def test_a_missing_file_is_named_and_the_command_fails(registry):
    key = Artifact.objects.get(path="a.bin").storage_key
    default_storage.delete(key)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 invariant violation") as e:
        call_command("check_invariants", stdout=out)
    assert e.value.returncode == 1
    assert f"missing_file: fraud v1 a.bin ({key}) is missing from storage" in out.getvalue()


def test_a_file_of_another_size_or_content_is_named(registry):
    a = Artifact.objects.get(path="a.bin")
    b = Artifact.objects.get(path="b.bin")
    with default_storage.open(a.storage_key, "wb") as f:
        f.write(b"AAAAA")
    with default_storage.open(b.storage_key, "wb") as f:
        f.write(b"XXXXXX")
    assert violations() == [
        f"file_mismatch: fraud v1 a.bin ({a.storage_key}) has 5 bytes in storage, 4 recorded",
        f"file_mismatch: fraud v2 b.bin ({b.storage_key}) has another SHA-256 in storage "
        "than recorded",
    ]
    # Without digests only the size is compared.
    assert len(violations(verify_digests=False)) == 1


def test_an_old_stored_file_without_a_row_is_an_orphan_a_young_one_is_not(registry):
    model = registry[0]
    old = default_storage.save(f"artifacts/{model.pk}/stray-old", ContentFile(b"x"))
    default_storage.save(f"artifacts/{model.pk}/stray-new", ContentFile(b"y"))
    age(old, 61)
    assert violations() == [f"orphan_file: {old} is stored but no artifact row names it"]


def test_a_reused_version_number_is_named(registry):
    model = registry[0]
    RegisteredModel.objects.filter(pk=model.pk).update(next_version_number=2)
    assert violations() == ["number_reuse: fraud has version 2 but would give out 2 next"]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="drops a constraint")
def test_two_versions_with_one_number_are_named(registry):
    model, draft, approved = registry
    with connection.cursor() as c:
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        c.execute("ALTER TABLE models_app_modelversion DROP CONSTRAINT version_unique_number")
    ModelVersion.objects.filter(pk=draft.pk).update(number=approved.number)
    assert "duplicate_number: fraud has 2 versions numbered 2" in violations()


def test_a_dataset_link_naming_another_model_than_its_versions_is_named(registry, owner):
    model, draft, approved = registry
    link = VersionDataset.objects.get(version=approved)
    assert link.model_id == model.pk  # (as the version service wrote it)
    other = factories.registered_model(owner, "other")
    VersionDataset.objects.filter(pk=link.pk).update(model=other)
    assert violations() == ["wrong_link_model: dataset claims's link to fraud v2 names model other"]


def test_a_protected_alias_on_an_unapproved_version_is_named(registry):
    model, draft, approved = registry
    Alias.objects.filter(model=model, name="production").update(version=draft)
    assert violations() == [
        "alias_holder: fraud@production names version 1, which is draft, not approved",
        "audit_missing: fraud@production holds v1, its last move recorded v2",
    ]


def test_a_version_without_its_events_is_named(registry, owner):
    model, draft, approved = registry
    ModelVersion.objects.filter(pk=draft.pk).update(status=ModelVersion.Status.REJECTED)
    sneaked = ModelVersion.objects.create(model=model, number=7, created_by=owner)
    RegisteredModel.objects.filter(pk=model.pk).update(next_version_number=8)
    summary.recompute([model.pk])  # (what this test is not about)
    assert violations() == [
        "audit_missing: fraud v1 is rejected without review.rejected or "
        "version.revalidation_rejected",
        f"audit_missing: fraud v{sneaked.number} has no version.created event",
    ]


def test_an_alias_moved_without_an_event_is_named(registry, owner):
    model, draft, approved = registry
    Alias.objects.create(model=model, name="shadow", version=draft)
    assert violations() == ["audit_missing: fraud@shadow holds v1 without a move"]


def test_a_broken_audit_chain_is_named(registry):
    bypass_append_only_trigger()
    AuditEvent.objects.filter(seq=2).update(actor_username="mallory")
    assert violations() == ["audit_chain: event #2 was modified"]


def test_imported_versions_are_not_asked_for_local_events(tmp_path, registry, owner):
    """Their history is the imported batch; a consistent import passes."""
    archive = tmp_path / "export.tar"
    call_command("export_registry", str(archive), stdout=io.StringIO())
    RegisteredModel.objects.filter(name="fraud").update(
        name="fraud-old", name_key="fraud-old", slug="fraud-old"
    )
    call_command("import_registry", str(archive), stdout=io.StringIO())
    assert violations(grace=timedelta(0)) == []
