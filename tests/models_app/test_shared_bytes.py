"""One stored file, several rows: bytes are deleted only when no row refers to them any more
(models_app.storage.release), after the commit that removed the last reference."""

import pytest

from models_app import services, storage
from models_app.metadata import parse_metadata
from models_app.models import Artifact, PendingKey
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage
from tracking.services import experiments, files, runs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


def read(key: str) -> bytes:
    with storage.open_stored(key) as f:
        return f.read()


def adopting(model, actor, artifact_or_file):
    """A new version of ``model`` whose file is the same stored bytes (no copy)."""
    source = artifact_or_file
    return services.version_create(
        actor=actor,
        model=model,
        metadata=parse_metadata({}),
        adopt=[
            storage.StoredFile(
                path=source.path,
                storage_key=source.storage_key,
                size=source.size,
                sha256=source.sha256,
            )
        ],
    )


@pytest.fixture
def shared(owner):
    """Versions 1 and 2 of a model, both made of the same stored file."""
    model = factories.registered_model(owner, "fraud-detector")
    one = factories.version(model, owner, files={"model.bin": b"weights"})
    two = adopting(model, owner, one.artifacts.get())
    return model, one, two


def test_two_versions_share_one_stored_file(shared):
    _, one, two = shared
    assert one.artifacts.get().storage_key == two.artifacts.get().storage_key
    assert len(stored_keys("artifacts")) == 1


def test_deleting_a_draft_that_shares_bytes_keeps_them_until_the_last_reference_goes(
    shared, owner, django_capture_on_commit_callbacks
):
    _, one, two = shared
    key = two.artifacts.get().storage_key
    with django_capture_on_commit_callbacks(execute=True):
        services.version_delete(actor=owner, version=one)
    assert read(key) == b"weights"  # version 2 still downloads
    with django_capture_on_commit_callbacks(execute=True):
        services.version_delete(actor=owner, version=two)
    assert stored_keys("artifacts") == []
    assert not PendingKey.objects.exists()


def test_bytes_go_only_after_the_commit_that_removed_the_last_reference(
    shared, owner, django_capture_on_commit_callbacks
):
    _, one, two = shared
    key = one.artifacts.get().storage_key
    services.version_delete(actor=owner, version=one)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.version_delete(actor=owner, version=two)
    assert read(key) == b"weights"  # not committed yet: still there
    for callback in callbacks:
        callback()
    assert stored_keys("artifacts") == []


def test_deleting_one_shared_file_of_a_draft_keeps_it_for_the_other_version(
    shared, owner, django_capture_on_commit_callbacks
):
    _, one, two = shared
    with django_capture_on_commit_callbacks(execute=True):
        services.artifact_delete(actor=owner, artifact=one.artifacts.get())
    assert not one.artifacts.exists()
    assert read(two.artifacts.get().storage_key) == b"weights"


def test_deleting_a_model_keeps_the_bytes_another_model_shares(
    shared, owner, django_capture_on_commit_callbacks
):
    _, one, _ = shared
    other = factories.registered_model(owner, "other-model")
    kept = adopting(other, owner, one.artifacts.get())
    first = factories.registered_model(owner, "lonely")
    alone = factories.version(first, owner, files={"alone.bin": b"only here"})
    alone_key = alone.artifacts.get().storage_key
    with django_capture_on_commit_callbacks(execute=True):
        services.model_delete(actor=owner, model=one.model)
        services.model_delete(actor=owner, model=first)
    assert read(kept.artifacts.get().storage_key) == b"weights"
    assert alone_key not in stored_keys("artifacts")


@pytest.fixture
def run_file(owner):
    experiment = experiments.experiment_create(actor=owner, name="churn")
    run = runs.run_create(actor=owner, experiment=experiment)
    logged = files.tracked_file_put(
        actor=owner,
        owner=run,
        path="model/model.pkl",
        incoming=storage.incoming_from_bytes("model/model.pkl", b"from the run"),
    )
    return run, logged


def test_a_version_sharing_a_run_file_leaves_it_when_deleted(
    run_file, owner, django_capture_on_commit_callbacks
):
    _, logged = run_file
    model = factories.registered_model(owner, "churn-predictor")
    version = adopting(model, owner, logged)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_delete(actor=owner, version=version)
    assert read(logged.storage_key) == b"from the run"


def test_replacing_a_run_file_keeps_the_old_bytes_a_version_refers_to(
    run_file, owner, django_capture_on_commit_callbacks
):
    run, logged = run_file
    model = factories.registered_model(owner, "churn-predictor")
    version = adopting(model, owner, logged)
    with django_capture_on_commit_callbacks(execute=True):
        files.tracked_file_put(
            actor=owner,
            owner=run,
            path="model/model.pkl",
            incoming=storage.incoming_from_bytes("model/model.pkl", b"retrained"),
        )
    assert read(version.artifacts.get().storage_key) == b"from the run"
    with django_capture_on_commit_callbacks(execute=True):
        services.version_delete(actor=owner, version=version)
    assert logged.storage_key not in stored_keys("tracking")  # its last reference went
    assert len(stored_keys("tracking")) == 1  # the new run file's


def test_release_deletes_only_the_keys_no_row_names_in_one_query(
    shared, run_file, django_assert_num_queries
):
    _, one, _ = shared
    _, logged = run_file
    orphan = "artifacts/999/orphan"
    storage.store(orphan, storage.incoming_from_bytes("x", b"nobody's"))
    storage.settle([orphan])
    keys = [one.artifacts.get().storage_key, logged.storage_key, orphan]
    with django_assert_num_queries(1):  # one statement over every referring table
        assert storage.referenced(keys) == set(keys[:2])
    assert storage.release(keys) == [orphan]
    assert orphan not in stored_keys("artifacts")
    assert Artifact.objects.count() == 2
