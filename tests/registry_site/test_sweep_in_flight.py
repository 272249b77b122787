"""sweep_orphans never deletes a file an operation in flight is about to record (finding 10):
a stored file keeps its temporary file's time, so it can look hours old the moment it is
stored; the keys being stored are recorded first, and the sweep leaves them alone."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from exchange import importing
from models_app import storage
from models_app.metadata import parse_metadata
from models_app.models import Artifact, PendingKey, RegisteredModel
from models_app.services import versions
from registry_site import invariants
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


def make_old(path: str, minutes: int = 180) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def sweep() -> str:
    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)
    return out.getvalue()


def test_a_sweep_in_the_middle_of_an_import_keeps_the_files_it_stored(owner, tmp_path, monkeypatch):
    model = factories.registered_model(owner, "fraud")
    factories.version(model, owner, files={"a.bin": b"A" * 100, "b.bin": b"B" * 200})
    archive = tmp_path / "export.tar"
    call_command("export_registry", str(archive), stdout=io.StringIO())
    RegisteredModel.objects.filter(pk=model.pk).update(
        name="fraud-old", name_key="fraud-old", slug="fraud-old"
    )
    real_store = importing.store_files
    swept = []

    def store_then_sweep(plan):
        for item in plan.artifacts:
            make_old(item.local)  # extracted long ago (a big archive): the move keeps the time
        keys = real_store(plan)
        swept.append(sweep())  # the nightly sweep runs before the import commits
        return keys

    monkeypatch.setattr(importing, "store_files", store_then_sweep)
    call_command("import_registry", str(archive), stdout=io.StringIO())
    assert "0 orphaned" in swept[0]
    imported = Artifact.objects.filter(version__model__name="fraud")
    assert imported.count() == 2
    assert set(imported.values_list("storage_key", flat=True)) <= set(stored_keys())
    assert invariants.check_all(grace=timedelta(0)) == []
    assert not PendingKey.objects.exists()  # settled once the import committed


def test_a_sweep_while_a_version_is_registered_keeps_its_files(owner, monkeypatch):
    model = factories.registered_model(owner, "fraud")
    real_store = versions.store_files
    swept = []

    def store_then_sweep(model, files):
        for f in files:
            make_old(f.local_path)
        keys = real_store(model, files)
        swept.append(sweep())
        return keys

    monkeypatch.setattr(versions, "store_files", store_then_sweep)
    incoming = [storage.incoming_from_bytes("model.bin", b"weights")]
    version = versions.version_create(
        actor=owner, model=model, metadata=parse_metadata({}), files=incoming
    )
    assert "0 orphaned" in swept[0]
    assert version.artifacts.get().stored_at is not None
    assert invariants.check_all(grace=timedelta(0)) == []
    assert not PendingKey.objects.exists()


def test_stored_files_are_dated_when_stored_not_when_spooled(owner):
    model = factories.registered_model(owner, "fraud")
    incoming = storage.incoming_from_bytes("model.bin", b"weights")
    make_old(incoming.local_path)
    version = versions.version_create(
        actor=owner, model=model, metadata=parse_metadata({}), files=[incoming]
    )
    key = version.artifacts.get().storage_key
    from django.core.files.storage import default_storage

    assert timezone.now() - default_storage.get_modified_time(key) < timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)  # the failure dooms the enclosing transaction
def test_a_failed_registration_leaves_neither_file_nor_pending_key(owner, monkeypatch):
    model = factories.registered_model(owner, "fraud")

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(versions.chain, "record", boom)
    with pytest.raises(RuntimeError):
        factories.version(model, owner, files={"model.bin": b"weights"})
    assert stored_keys("artifacts") == []
    assert not PendingKey.objects.exists()


def test_a_crashed_operation_s_pending_key_is_swept_after_the_grace_period(owner):
    """A process killed between storing and recording leaves its pending key: the file is kept
    while it is young, removed with the key once the grace period is over."""
    model = factories.registered_model(owner, "fraud")
    key = storage.new_storage_key(model.pk)
    storage.store(key, storage.incoming_from_bytes("x", b"orphan"))
    assert PendingKey.objects.filter(key=key).exists()  # never settled: the process died
    assert "1 too recent" in sweep()
    PendingKey.objects.filter(key=key).update(created_at=timezone.now() - timedelta(hours=2))
    out = sweep()
    assert f"deleted {key}" in out
    assert stored_keys("artifacts") == [] and not PendingKey.objects.exists()
