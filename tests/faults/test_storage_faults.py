"""Storage faults injected in-process, on local files (and S3 where it applies):

F3 the transaction rolls back after the file was saved; F4 a storage delete fails after the
delete committed; F5 storage errors or a full disk mid-upload; F6 storage down during a
download; F16 the sweeper interrupted midway or finding objects already gone.

Each fault is injected FAULT_RUNS times, at a moment that varies with the run (which
statement fails, which delete, which byte the disk fills at), and the invariant checker runs
after each. The full disk is real where the machine allows it (a small tmpfs mounted over the
artifact folder, as root); elsewhere OSError(ENOSPC) is raised at the storage boundary
(shutil.move) after part of the file was written."""

import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from audit.models import AuditChainHead
from models_app import storage
from models_app.models import Artifact, ModelVersion, PendingKey
from models_app.services import versions
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.tokens import token_create
from tests import factories
from tests.faults.conftest import RUNS, check
from tests.faults.failing import FailingStorage

pytestmark = pytest.mark.usefixtures("fault_storage")


def stored(root: Path) -> list[str]:
    """The stored keys (the storage's location is root/artifacts)."""
    base = root / "artifacts"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "fraud")


def api_client(user) -> Client:
    _, secret = token_create(actor=user, user=user, name=f"t-{user.pk}", scope="write")
    return Client(headers={"Authorization": f"Bearer {secret}"})


def file_url(model, number: int, path: str) -> str:
    return f"/api/v1/models/{model.name}/versions/{number}/files/{path}"


# ---------------------------------------------------------------------------------------------
# F3: the transaction rolls back after the files were stored


def _boom(*args, **kwargs):
    raise OperationalError("injected: the statement failed")


# Where the registering transaction fails, after the files were stored: each statement of
# version_create in turn.
F3_POINTS = [
    (versions.sql, "insert_numbered"),  # numbering the version
    (versions, "_write_links"),  # its datasets and parents
    (versions.Artifact.objects, "bulk_create"),  # its file rows
    (versions.chain, "record"),  # its audit event
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", RUNS)
def test_f3_rollback_after_the_files_were_stored(run, model, owner, fault_storage, monkeypatch):
    target, name = F3_POINTS[run % len(F3_POINTS)]
    monkeypatch.setattr(target, name, _boom)
    files = {f"f{i}.bin": os.urandom(100 + 1000 * run + i) for i in range(1 + run % 3)}
    with pytest.raises(OperationalError):
        factories.version(model, owner, files=files)
    assert not ModelVersion.objects.exists() and not Artifact.objects.exists()
    assert stored(fault_storage) == []  # removed at once, not left to the sweep
    assert not PendingKey.objects.exists()
    check("F3 rollback after the file was saved")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", RUNS)
def test_f3_rollback_while_adding_files_to_a_draft(run, model, owner, fault_storage, monkeypatch):
    draft = factories.version(model, owner, files={"keep.bin": b"k"})
    target, name = [(versions.chain, "record"), (versions, "apply_filled")][run % 2]
    monkeypatch.setattr(target, name, _boom)
    incoming = [storage.incoming_from_bytes(f"n{i}.bin", os.urandom(50 + run)) for i in range(2)]
    with pytest.raises(OperationalError):
        versions.artifact_add(actor=owner, version=draft, files=incoming)
    assert list(draft.artifacts.values_list("path", flat=True)) == ["keep.bin"]
    assert len(stored(fault_storage)) == 1
    check("F3 rollback after the file was saved")


# ---------------------------------------------------------------------------------------------
# F4: the storage delete fails after the delete committed


def _f4_delete(kind: str, model, owner):
    """Delete something with files through its service; the deletes run after the commit."""
    from models_app import services

    if kind == "artifact":
        version = factories.version(model, owner, files={"a.bin": b"a", "b.bin": b"bb"})
        services.artifact_delete(actor=owner, artifact=version.artifacts.get(path="a.bin"))
    elif kind == "version":
        version = factories.version(model, owner, files={"a.bin": b"a", "b.bin": b"bb"})
        services.version_delete(actor=owner, version=version)
    elif kind == "model":
        for i in range(3):
            factories.version(model, owner, files={f"{i}.bin": b"x" * (i + 1)})
        services.model_delete(actor=owner, model=model)
    else:  # a staged MLflow upload
        incoming = storage.incoming_from_bytes("m.bin", b"staged")
        mlflow_services.staged_put(actor=owner, model=model, path="u1/m.bin", incoming=incoming)
        mlflow_services.staged_delete(actor=owner, model=model, prefix="u1")


@pytest.mark.parametrize("run", RUNS)
def test_f4_storage_delete_fails_after_the_delete_committed(
    run, model, owner, fault_storage, django_capture_on_commit_callbacks
):
    kind = ["artifact", "version", "model", "staged"][run % 4]
    # Which delete fails: every one, or the first or second of the operation (a staged
    # upload has only one).
    which = {1} if kind == "staged" else {1 + run % 2}
    FailingStorage.fail_deletes = FailingStorage.ALL if run % 5 == 4 else which
    with django_capture_on_commit_callbacks(execute=True):
        _f4_delete(kind, model, owner)  # nothing crashes: the failure is logged and kept
    left = stored(fault_storage)
    referenced = set(Artifact.objects.values_list("storage_key", flat=True))
    unreferenced = [k for k in left if k not in referenced]
    assert unreferenced  # the failed delete left its file
    pending = set(PendingKey.objects.filter(kind="delete").values_list("key", flat=True))
    assert set(unreferenced) == pending
    FailingStorage.reset()  # storage is back
    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)  # the default grace: retried at once anyway
    assert f"{len(pending)} failed delete(s) retried" in out.getvalue()
    assert sorted(referenced) == stored(fault_storage)
    assert not PendingKey.objects.exists()
    check("F4 storage delete fails after a delete committed")


# ---------------------------------------------------------------------------------------------
# F5: storage errors or a full disk mid-upload


def _mount_small_disk(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(fault_storage):
    """The artifact folder on a 1 MiB file system of its own (real ENOSPC), or None where
    mounting is not allowed."""
    folder = fault_storage / "artifacts"
    mounted = _mount_small_disk(folder, "1m")
    yield folder if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fail_mid_copy(at: int, code: int):
    """shutil.move that writes ``at`` bytes of the file, then fails with ``code``."""

    def move(src, dst):
        with open(src, "rb") as source, open(dst, "wb") as target:
            target.write(source.read(at))
        raise OSError(code, os.strerror(code), str(dst))

    return move


@pytest.mark.parametrize("run", RUNS)
def test_f5_disk_full_mid_upload_answers_507_and_a_retry_succeeds(
    run, model, owner, fault_storage, small_disk, monkeypatch
):
    version = factories.version(model, owner)
    client = api_client(owner)
    body = os.urandom(900_000)
    free = 100_000 + 35_000 * (run % 20)  # the disk fills at a different byte each run
    if small_disk is not None:
        (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - free))
    else:  # no mount here: fail at the storage boundary after the bytes that fit
        monkeypatch.setattr(storage.shutil, "move", _fail_mid_copy(free, errno.ENOSPC))
    head = AuditChainHead.objects.get().seq
    response = client.put(
        file_url(model, version.number, "model.bin"), body, content_type="application/octet-stream"
    )
    assert response.status_code == 507, response.content
    assert "storage is full" in response.json()["error"]["message"]
    assert not version.artifacts.exists()
    assert AuditChainHead.objects.get().seq == head
    assert [k for k in stored(fault_storage) if k != "filler"] == []
    assert os.listdir(fault_storage / "spool") == []
    check("F5 disk full mid-upload")
    # Space is freed; the same upload now succeeds.
    if small_disk is not None:
        (small_disk / "filler").unlink()
    else:
        monkeypatch.undo()
    response = client.put(
        file_url(model, version.number, "model.bin"), body, content_type="application/octet-stream"
    )
    assert response.status_code == 201, response.content
    check("F5 disk full mid-upload")


@pytest.mark.parametrize("run", RUNS)
def test_f5_storage_error_mid_upload_answers_503_and_a_retry_succeeds(
    run, model, owner, fault_storage, monkeypatch
):
    version = factories.version(model, owner)
    client = api_client(owner)
    body = os.urandom(50_000 + run)
    code = [errno.EIO, errno.ETIMEDOUT, errno.EACCES][run % 3]
    monkeypatch.setattr(storage.shutil, "move", _fail_mid_copy(1000 * run, code))
    url = file_url(model, version.number, "weights/model.bin")
    response = client.put(url, body, content_type="application/octet-stream")
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert "unavailable" in response.json()["error"]["message"]
    assert not version.artifacts.exists() and stored(fault_storage) == []
    check("F5 storage error mid-upload")
    monkeypatch.undo()
    assert client.put(url, body, content_type="application/octet-stream").status_code == 201
    check("F5 storage error mid-upload")


# ---------------------------------------------------------------------------------------------
# F6: storage down during a download


@pytest.mark.parametrize("run", RUNS)
def test_f6_storage_down_during_a_download_answers_503(run, model, owner, fault_storage):
    version = factories.version(model, owner, files={"model.bin": b"weights" * 100})
    FailingStorage.fail_opens = [errno.EIO, errno.ENOTCONN, errno.EACCES][run % 3]
    if run % 2:
        client = api_client(owner)
        head = AuditChainHead.objects.get().seq
        response = client.get(file_url(model, version.number, "model.bin"))
        message = response.json()["error"]["message"]
    else:
        client = Client()
        client.force_login(owner)
        head = AuditChainHead.objects.get().seq
        response = client.get(
            reverse("models_app:artifact_download", args=[model.slug, version.number, "model.bin"])
        )
        assert response["Content-Type"].startswith("text/plain")
        message = response.content.decode()
    assert response.status_code == 503
    assert message.startswith("Artifact storage is unavailable")
    assert AuditChainHead.objects.get().seq == head  # nothing changed
    FailingStorage.reset()
    check("F6 storage down during a download")


# ---------------------------------------------------------------------------------------------
# F16: the sweeper interrupted midway, or finding objects already gone


def _orphans(model, n: int) -> list[str]:
    keys = []
    for i in range(n):
        key = storage.new_storage_key(model.pk)
        storage.store(key, storage.incoming_from_bytes("x", b"o" * (i + 1)))
        keys.append(key)
    storage.settle(keys)
    return keys


@pytest.mark.parametrize("run", RUNS)
def test_f16_sweeper_interrupted_midway_then_run_again(run, model, owner, fault_storage):
    factories.version(model, owner, files={"keep.bin": b"keep"})
    _orphans(model, 6)
    FailingStorage.fail_deletes = {1 + run % 6}

    class Killed(BaseException):  # as a signal would end it: not an Exception
        pass

    original = FailingStorage.delete

    def delete(self, name):
        if type(self).deletes + 1 in self.fail_deletes:
            raise Killed
        return original(self, name)

    FailingStorage.delete = delete
    try:
        with pytest.raises(Killed):
            call_command("sweep_orphans", "--min-age-minutes", "0", stdout=io.StringIO())
    finally:
        FailingStorage.delete = original
    FailingStorage.reset()
    out = io.StringIO()
    call_command("sweep_orphans", "--min-age-minutes", "0", stdout=out)  # idempotent
    assert f"{6 - run % 6} orphaned (deleted)" in out.getvalue()
    assert len(stored(fault_storage)) == 1
    check("F16 sweeper killed midway or object gone")


@pytest.mark.parametrize("run", RUNS)
def test_f16_sweeper_finds_objects_already_gone(run, model, owner, fault_storage, monkeypatch):
    factories.version(model, owner, files={"keep.bin": b"keep"})
    keys = _orphans(model, 4)
    gone = keys[run % 4]
    # Another sweep (or an operator) removes one object after this sweep listed it.
    from registry_site.management.commands import sweep_orphans

    real_walk = sweep_orphans.walk

    def walk(storage_, folder):
        for key in real_walk(storage_, folder):
            if key == gone:  # (walk recurses through this patch: unlink once)
                Path(storage_.path(key)).unlink(missing_ok=True)
            yield key

    monkeypatch.setattr(sweep_orphans, "walk", walk)
    PendingKey.objects.create(key=keys[(run + 1) % 4], kind="delete")  # a retry, also gone
    os.unlink(fault_storage / "artifacts" / keys[(run + 1) % 4])
    out = io.StringIO()
    call_command("sweep_orphans", "--min-age-minutes", "0", stdout=out)
    assert len(stored(fault_storage)) == 1
    assert not PendingKey.objects.exists()
    check("F16 sweeper killed midway or object gone")
