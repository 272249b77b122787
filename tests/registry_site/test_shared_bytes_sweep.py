"""sweep_orphans and check_invariants with shared stored bytes: a stored file is an orphan only
when no row of any table names it (versions' artifacts, staged uploads, runs' and logged
models' files), under artifacts/ and tracking/ alike; a run's file whose bytes are missing is
reported."""

import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from models_app import services, storage
from models_app.metadata import parse_metadata
from registry_site import invariants
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage
from tests.registry_site.test_invariants import age
from tracking.services import experiments, files, runs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def run_file(owner):
    """A run's file, and a version made of the same stored bytes."""
    experiment = experiments.experiment_create(actor=owner, name="churn")
    run = runs.run_create(actor=owner, experiment=experiment)
    logged = files.tracked_file_put(
        actor=owner,
        owner=run,
        path="model.pkl",
        incoming=storage.incoming_from_bytes("model.pkl", b"weights"),
    )
    model = factories.registered_model(owner, "churn-predictor")
    version = services.version_create(
        actor=owner,
        model=model,
        metadata=parse_metadata({}),
        adopt=[
            storage.StoredFile(
                path="model.pkl",
                storage_key=logged.storage_key,
                size=logged.size,
                sha256=logged.sha256,
            )
        ],
    )
    return logged, version


def sweep() -> str:
    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)
    return out.getvalue()


def test_the_sweep_deletes_an_old_stray_file_under_tracking_and_keeps_referenced_ones(run_file):
    logged, _ = run_file
    stray = default_storage.save(f"tracking/{logged.run.experiment_id}/stray", ContentFile(b"x"))
    age(stray, 61)
    age(logged.storage_key, 61)
    out = sweep()
    assert f"deleted {stray}" in out
    assert stored_keys("tracking") == [logged.storage_key]
    assert "2 stored files: 1 in use" in out


def test_a_file_shared_by_a_version_and_a_run_is_kept_while_either_refers_to_it(
    run_file, owner, django_capture_on_commit_callbacks
):
    logged, version = run_file
    age(logged.storage_key, 61)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_delete(actor=owner, version=version)
    sweep()
    assert stored_keys("tracking") == [logged.storage_key]  # the run's file still names it
    logged.delete()  # the run's row gone too (as a cascade would): now it is an orphan
    assert "1 orphaned (deleted)" in sweep()
    assert stored_keys("tracking") == []


def test_check_invariants_reports_a_run_file_whose_bytes_are_missing(run_file):
    logged, version = run_file
    default_storage.delete(logged.storage_key)
    found = [str(v) for v in invariants.check_files()]
    assert found == [
        f"missing_file: churn-predictor v{version.number} model.pkl ({logged.storage_key}) "
        "is missing from storage",
        f"missing_file: run {logged.run_id}'s file model.pkl ({logged.storage_key}) "
        "is missing from storage",
    ]


def test_check_invariants_names_an_orphan_under_tracking_but_not_a_shared_file(run_file):
    logged, _ = run_file
    stray = default_storage.save("tracking/9/stray", ContentFile(b"x"))
    age(stray, 61)
    age(logged.storage_key, 61)
    found = [str(v) for v in invariants.check_orphans(grace=timedelta(minutes=60))]
    assert found == [f"orphan_file: {stray} is stored but no row names it"]
    assert [str(v) for v in invariants.check_files()] == []
