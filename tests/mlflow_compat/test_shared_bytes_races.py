"""Races on PostgreSQL: an upload expired (its bytes released) while a version adopts it.

The adopter locks the staged rows it adopts (FOR UPDATE) until its version is committed; the
expiry locks them too before deleting them, and ``storage.release`` reads every referring table
after that commit, in one statement. Whichever goes first, the bytes a version refers to stay,
and bytes nobody refers to go. Each order is forced: one side pauses while holding its locks,
and the other runs into them."""

import threading
import time

import pytest
from django.db import connection, connections  # noqa: F401 (connection: the skipif condition)
from django.http import Http404
from django.utils import timezone

from models_app import services as catalogue
from models_app import storage
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion
from registry_site.mlflow_compat import services
from registry_site.mlflow_compat.models import StagedArtifact
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]

PAUSE = 1.5  # long enough for the other thread to reach the lock and wait on it


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def upload(owner):
    model = factories.registered_model(owner, "fraud-detector")
    for path in ("up/model.bin", "up/MLmodel"):
        services.staged_put(
            actor=owner,
            model=None,
            path=path,
            incoming=storage.incoming_from_bytes(path, f"bytes of {path}".encode()),
        )
    return model


def in_thread(fn) -> tuple[threading.Thread, list]:
    result: list = []

    def run():
        try:
            result.append(fn())
        except Exception as e:  # noqa: BLE001 (collected for the assertions)
            result.append(e)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def register(owner, model):
    return services.version_register(
        actor=owner, model=model, metadata=parse_metadata({}), upload_prefix="up"
    )


def expire():
    return services.staged_expire(older_than=timezone.now() + timezone.timedelta(days=1))


def test_an_upload_expired_while_a_version_adopts_it_keeps_the_versions_bytes(
    owner, upload, monkeypatch
):
    locked = threading.Event()
    create = catalogue.version_create

    def slow_create(**kwargs):  # the staged rows are locked by now
        locked.set()
        time.sleep(PAUSE)
        return create(**kwargs)

    monkeypatch.setattr(catalogue, "version_create", slow_create)
    adopter, adopted = in_thread(lambda: register(owner, upload))
    assert locked.wait(30)
    expirer, expired = in_thread(expire)  # waits for the adopter's commit, then deletes
    adopter.join(60)
    expirer.join(60)

    version = adopted[0]
    assert isinstance(version, ModelVersion), adopted
    assert len(expired[0]) == 2, expired
    assert not StagedArtifact.objects.exists()
    artifacts = {a.path: a.storage_key for a in version.artifacts.all()}
    assert sorted(artifacts) == ["MLmodel", "model.bin"]
    for path, key in artifacts.items():
        with storage.open_stored(key) as f:
            assert f.read() == f"bytes of up/{path}".encode()
    assert len(stored_keys("artifacts")) == 2


def test_a_version_adopting_an_upload_being_expired_finds_it_gone_and_the_bytes_go(
    owner, upload, monkeypatch
):
    deleted = threading.Event()
    release_on_commit = storage.release_on_commit

    def slow_release_on_commit(keys):  # the rows are deleted, not yet committed
        release_on_commit(keys)
        deleted.set()
        time.sleep(PAUSE)

    monkeypatch.setattr(storage, "release_on_commit", slow_release_on_commit)
    expirer, expired = in_thread(expire)
    assert deleted.wait(30)
    adopter, adopted = in_thread(lambda: register(owner, upload))  # waits on the locks
    expirer.join(60)
    adopter.join(60)

    assert len(expired[0]) == 2, expired
    assert isinstance(adopted[0], Http404), adopted
    assert not ModelVersion.objects.exists()
    assert stored_keys("artifacts") == []  # nobody refers to them: released
