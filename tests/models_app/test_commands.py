"""manage.py register_version, verify_artifacts and sweep_orphans."""

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from models_app.models import ModelVersion
from tests import factories
from tests.models_app.test_register import sha, stored_keys, use_local_storage

pytestmark = pytest.mark.django_db

METADATA_YAML = """
description: Retrained on May data.
framework: xgboost
metrics:
  - {name: auc, value: 0.91, split: test}
  - {name: loss, value: 0.2}
params: {max_depth: 6}
requirements: |
  xgboost==2.1.0
"""


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "Fraud Detector")


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "export"
    (root / "weights").mkdir(parents=True)
    (root / "model.json").write_bytes(b'{"kind": "xgb"}')
    (root / "weights" / "booster.bin").write_bytes(b"\x00\x01" * 5000)
    return root


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# register_version


def test_registers_a_folder_with_yaml_metadata(model, owner, folder, tmp_path):
    meta = tmp_path / "meta.yaml"
    meta.write_text(METADATA_YAML)
    out = run("register_version", "fraud detector", str(folder), "--metadata", str(meta))
    version = ModelVersion.objects.get(model=model)
    assert version.created_by == owner
    assert version.framework == "xgboost"
    assert version.metric_map() == {("auc", "test"): 0.91, ("loss", ""): 0.2}
    files = dict(version.artifacts.values_list("path", "sha256"))
    assert files == {
        "model.json": sha(b'{"kind": "xgb"}'),
        "weights/booster.bin": sha(b"\x00\x01" * 5000),
    }
    assert "version 1" in out
    for path, digest in files.items():
        assert f"{digest}  {path}" in out
    assert len(stored_keys()) == 2
    assert folder.joinpath("model.json").exists()  # the source is left alone


def test_registers_a_single_file_with_json_metadata_as_another_user(model, editor, tmp_path):
    factories.grant(editor, model, "edit")
    (tmp_path / "m.json").write_text('{"metrics": {"auc": 0.8}}')
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    run(
        "register_version",
        "fraud-detector",
        str(tmp_path / "model.onnx"),
        "--metadata",
        str(tmp_path / "m.json"),
        "--as",
        "editor",
    )
    version = ModelVersion.objects.get(model=model)
    assert version.created_by == editor
    assert list(version.artifacts.values_list("path", flat=True)) == ["model.onnx"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("meta.yaml", "metrics: [unclosed", "does not parse"),
        ("meta.json", "{nope", "does not parse"),
        ("meta.yaml", "- just\n- a list\n", "must hold a mapping"),
        ("meta.yaml", "metrics: {auc: .nan}", "finite"),
        ("meta.yaml", "colour: blue", "unknown fields: colour"),
        ("meta.yaml", "!!python/object:os.system {}", "does not parse"),
    ],
)
def test_bad_metadata_file_is_refused(model, folder, tmp_path, name, content, message):
    meta = tmp_path / name
    meta.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("register_version", "fraud-detector", str(folder), "--metadata", str(meta))
    assert not ModelVersion.objects.exists()
    assert stored_keys() == []


def test_missing_metadata_file_is_refused(model, folder):
    with pytest.raises(CommandError, match="Cannot read the metadata file"):
        run("register_version", "fraud-detector", str(folder), "--metadata", "/nonexistent.yaml")


def test_a_symlink_in_the_folder_is_refused(model, folder, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    os.symlink(secret, folder / "weights" / "leak.txt")
    with pytest.raises(CommandError, match="leak.txt is a symbolic link"):
        run("register_version", "fraud-detector", str(folder))
    assert not ModelVersion.objects.exists()
    assert stored_keys() == []


def test_a_symlinked_folder_inside_is_refused(model, folder, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.bin").write_bytes(b"x")
    os.symlink(tmp_path / "outside", folder / "linked")
    with pytest.raises(CommandError, match="linked is a symbolic link"):
        run("register_version", "fraud-detector", str(folder))
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-model", "{folder}"], "No model named 'no-such-model'"),
        (["fraud-detector", "/nonexistent/path"], "does not exist"),
        (["fraud-detector", "{empty}"], "holds no files"),
        (["fraud-detector", "{folder}", "--as", "nobody"], "No active user 'nobody'"),
        (["fraud-detector", "{folder}", "--as", "outsider"], "may not register versions"),
    ],
)
def test_bad_arguments_are_refused(model, folder, outsider, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(folder=folder, empty=tmp_path / "empty") for a in args]
    with pytest.raises(CommandError, match=message):
        run("register_version", *args)
    assert not ModelVersion.objects.exists()


# ---------------------------------------------------------------------------------------------
# verify_artifacts


@pytest.fixture
def versions(model, owner):
    other = factories.registered_model(owner, "other")
    return [
        factories.version(model, owner, files={"a.bin": b"AAAA", "dir/b.bin": b"BBBB"}),
        factories.version(other, owner, files={"c.bin": b"CCCC"}),
    ]


def test_verify_reports_all_intact(versions):
    out = run("verify_artifacts")
    assert "Checked 3 files (12 bytes): 3 intact, 0 damaged or missing." in out


def test_verify_names_a_tampered_and_a_missing_file_and_fails(versions):
    tampered = versions[0].artifacts.get(path="dir/b.bin")
    with default_storage.open(tampered.storage_key, "wb") as f:
        f.write(b"BBBX")
    missing = versions[1].artifacts.get()
    default_storage.delete(missing.storage_key)
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 stored file"):
        call_command("verify_artifacts", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "Fraud Detector v1 dir/b.bin: SHA-256 MISMATCH" in text
    assert "other v1 c.bin: MISSING" in text
    assert "a.bin" not in text.replace("dir/b.bin", "")
    assert "1 intact, 2 damaged or missing" in text


def test_verify_reports_a_changed_size(versions):
    artifact = versions[0].artifacts.get(path="a.bin")
    with default_storage.open(artifact.storage_key, "wb") as f:
        f.write(b"AAAAA")
    with pytest.raises(CommandError):
        run("verify_artifacts", "fraud detector")


def test_verify_can_be_limited_to_one_model(versions):
    default_storage.delete(versions[1].artifacts.get().storage_key)
    assert "Checked 2 files" in run("verify_artifacts", "Fraud Detector")
    with pytest.raises(CommandError, match="No model named"):
        run("verify_artifacts", "nope")


def test_verify_draws_progress_on_a_terminal(versions):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    call_command("verify_artifacts", stdout=io.StringIO(), stderr=err)
    assert "\r[" in err.getvalue() and "3/3 files" in err.getvalue()
    assert "\r" not in run("verify_artifacts")  # not a terminal: no progress line


# ---------------------------------------------------------------------------------------------
# sweep_orphans


def age(key: str, minutes: int) -> None:
    then = (timezone.now() - timedelta(minutes=minutes)).timestamp()
    os.utime(default_storage.path(key), (then, then))


def test_sweep_removes_old_strays_and_keeps_referenced_and_recent(versions, model):
    referenced = sorted(stored_keys())
    old = default_storage.save(f"artifacts/{model.pk}/stray-old", ContentFile(b"x"))
    new = default_storage.save("artifacts/999/stray-new", ContentFile(b"y"))
    for key in [*referenced, old]:
        age(key, 180)
    out = run("sweep_orphans")
    assert f"deleted {old}" in out
    assert stored_keys() == sorted([*referenced, new])
    assert "5 stored files: 3 in use, 1 too recent to judge, 1 orphaned (deleted)." in out


def test_sweep_dry_run_deletes_nothing(versions):
    stray = default_storage.save("artifacts/1/stray", ContentFile(b"x"))
    age(stray, 120)
    out = run("sweep_orphans", "--dry-run")
    assert f"would delete {stray}" in out
    assert stray in stored_keys()


def test_sweep_with_no_age_takes_every_stray_and_ignores_other_folders(versions):
    stray = default_storage.save("artifacts/1/fresh-stray", ContentFile(b"x"))
    unrelated = default_storage.save("exports/report.csv", ContentFile(b"x"))
    time.sleep(0.01)
    run("sweep_orphans", "--min-age-minutes", "0")
    keys = stored_keys()
    assert stray not in keys and unrelated in keys
    assert len(keys) == 4


def test_sweep_on_empty_storage_reports_nothing(db):
    assert "0 stored files" in run("sweep_orphans")


def test_a_fifo_in_the_folder_is_refused_without_blocking(model, folder):
    os.mkfifo(folder / "pipe")
    with pytest.raises(CommandError, match="pipe is not a regular file"):
        run("register_version", "fraud-detector", str(folder))
    assert not ModelVersion.objects.exists()
