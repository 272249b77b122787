"""The deployment recipe's script fetches the production files and refuses a tampered one."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from approvals import services
from registry_site.tokens import token_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "fetch-model.sh"


@pytest.fixture
def production(live_server):
    dana, rita, pat = factories.user("dana"), factories.user("rita"), factories.user("pat")
    model = factories.registered_model(dana, "fraud detector")
    factories.grant(rita, model, "review")
    factories.grant(pat, model, "promote")
    version = factories.version(
        model, dana, description="v1", metrics={"auc": 0.9}, datasets=["tx"],
        files={"model.onnx": b"onnx-bytes", "conf/labels.json": b'["a", "b"]'},
    )  # fmt: skip
    services.version_submit(actor=dana, version=version)
    services.review_approve(actor=rita, version=version)
    version.refresh_from_db()
    services.alias_set(actor=pat, model=model, name="production", version=version)
    _, token = token_create(actor=pat, user=pat, name="deploy", scope="read")
    return version, token


def run(live_server, token, dest) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGISTRY_URL": live_server.url, "REGISTRY_TOKEN": token}
    return subprocess.run(
        ["bash", str(SCRIPT), "fraud detector", "production", str(dest)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_script_fetches_and_verifies_the_production_files(live_server, production, tmp_path):
    version, token = production
    result = run(live_server, token, tmp_path / "model")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model" / "model.onnx").read_bytes() == b"onnx-bytes"
    assert (tmp_path / "model" / "conf" / "labels.json").read_bytes() == b'["a", "b"]'
    assert "every sha256 verified" in result.stderr
    assert (tmp_path / "model" / ".registry-resolve.json").exists()


def test_script_fails_on_a_checksum_mismatch_and_writes_nothing(live_server, production, tmp_path):
    version, token = production
    artifact = version.artifacts.get(path="model.onnx")
    Path(default_storage.path(artifact.storage_key)).write_bytes(b"tampered")
    assert hashlib.sha256(b"tampered").hexdigest() != artifact.sha256
    result = run(live_server, token, tmp_path / "model")
    assert result.returncode == 1
    assert "checksum mismatch for model.onnx" in result.stderr
    assert not (tmp_path / "model").exists()


def test_script_fails_without_access(live_server, production, tmp_path):
    outsider = factories.user("outsider")
    _, token = token_create(actor=outsider, user=outsider, name="x")
    result = run(live_server, token, tmp_path / "model")
    assert result.returncode == 1
    assert "refused to resolve" in result.stderr
