"""manage.py sweep_orphans and files staged through the MLflow artifact proxy."""

import io
import os
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from models_app import storage
from registry_site.mlflow_compat import services
from registry_site.mlflow_compat.models import StagedArtifact
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit deletes files


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    """An artifact folder of this test's own: the sweep counts every file in it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }


def stage(model, user, path: str, *, hours_ago: float):
    row = services.staged_put(
        actor=user, model=model, path=path, incoming=storage.incoming_from_bytes(path, b"bytes")
    )
    then = timezone.now() - timedelta(hours=hours_ago)
    StagedArtifact.objects.filter(pk=row.pk).update(created_at=then, uploaded_at=then)
    os.utime(default_storage.path(row.storage_key), (then.timestamp(), then.timestamp()))
    return row.storage_key


def run(*args) -> str:
    out = io.StringIO()
    call_command("sweep_orphans", *args, stdout=out)
    return out.getvalue()


def test_staged_files_are_in_use_for_a_day_then_expired(owner):
    model = factories.registered_model(owner, "fraud-detector")
    fresh = stage(model, owner, "up-1/model.bin", hours_ago=3)
    stale = stage(model, owner, "up-0/model.bin", hours_ago=30)

    out = run("--min-age-minutes", "0")
    assert "expired 1 staged MLflow upload(s) older than a day" in out
    assert default_storage.exists(fresh)
    assert not default_storage.exists(stale)
    assert list(StagedArtifact.objects.values_list("path", flat=True)) == ["up-1/model.bin"]
    event = AuditEvent.objects.get(action="mlflow.staged_expired")
    assert event.model_id == model.pk and event.before == {"files": ["up-0/model.bin"]}
    assert "1 stored files: 1 in use" in out


def test_a_dry_run_expires_nothing(owner):
    model = factories.registered_model(owner, "fraud-detector")
    stale = stage(model, owner, "up-0/model.bin", hours_ago=30)
    out = run("--dry-run", "--min-age-minutes", "0")
    assert "would expire 1 staged MLflow upload(s)" in out
    assert default_storage.exists(stale)
    assert StagedArtifact.objects.count() == 1
    assert not AuditEvent.objects.filter(action="mlflow.staged_expired").exists()


def test_a_file_uploaded_again_counts_from_its_latest_upload(owner, monkeypatch):
    model = factories.registered_model(owner, "fraud-detector")
    put = lambda: services.staged_put(  # noqa: E731
        actor=owner,
        model=model,
        path="up-0/model.bin",
        incoming=storage.incoming_from_bytes("model.bin", b"new bytes"),
    )
    first = timezone.now()
    put()
    later = first + timedelta(hours=30)  # past the expiry of the first upload
    monkeypatch.setattr(timezone, "now", lambda: later)
    again = put()
    monkeypatch.setattr(timezone, "now", lambda: later + timedelta(minutes=1))

    out = run("--min-age-minutes", "0")
    assert "expired" not in out
    assert list(StagedArtifact.objects.values_list("path", flat=True)) == ["up-0/model.bin"]
    assert default_storage.exists(again.storage_key)
    assert not AuditEvent.objects.filter(action="mlflow.staged_expired").exists()
