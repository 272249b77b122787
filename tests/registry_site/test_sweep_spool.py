"""Partial uploads a killed worker leaves in the spool folder: the folder is in the data dir
and sweep_orphans removes what is older than its --min-age-minutes (issue 15, F1)."""

import io
import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from models_app import storage
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db
HOURS = 3600


@pytest.fixture
def spool(settings, tmp_path) -> Path:
    use_local_storage(settings, tmp_path)
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


def aged(path: Path, seconds: int) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def sweep(*args) -> str:
    out = io.StringIO()
    call_command("sweep_orphans", *args, stdout=out)
    return out.getvalue()


def test_uploads_are_spooled_in_the_data_dir_not_the_system_tmp():
    assert Path(django_settings.FILE_UPLOAD_TEMP_DIR) == django_settings.DATA_DIR / "tmp"
    assert Path(django_settings.FILE_UPLOAD_TEMP_DIR).is_dir()


def test_the_sweep_removes_partial_uploads_older_than_the_grace_period(spool):
    partial = spool / "upload-killed"
    partial.write_bytes(b"half a model")
    aged(partial, 2 * HOURS)
    streaming = spool / "upload-in-progress"
    streaming.write_bytes(b"still coming")
    work = spool / "import-abc"
    work.mkdir()
    aged(work, 2 * HOURS)

    out = sweep()

    assert not partial.exists()
    assert streaming.exists()  # written to a moment ago: an upload in progress
    assert not work.exists()  # an empty work folder of a killed import
    assert "1 partial upload(s)" in out


def test_a_dry_run_lists_and_keeps_partial_uploads(spool):
    partial = spool / "upload-killed"
    partial.write_bytes(b"half a model")
    aged(partial, 2 * HOURS)
    assert "would delete 1 partial upload(s)" in sweep("--dry-run")
    assert partial.exists()


def test_a_spooled_stream_lands_in_the_spool_folder(spool):
    local, size, _ = storage.spool_stream(io.BytesIO(b"abc"), max_bytes=10)
    assert Path(local).parent == spool
    assert size == 3
