"""Hostile files: every one ends in a finding, within bounded time, without running anything
or reading outside the file."""

import io
import os
import pickle
import struct
import time
import zipfile

import pytest
from django.urls import reverse

from approvals import services as reviews
from approvals.services import GateFailure
from models_app.inspection import inspect_file
from registry_site.demo.files import protobuf_field as pb
from tests import factories
from tests.models_app.test_inspection import (
    gguf_file,
    gguf_string,
    keras_file,
    levels,
    onnx_model,
    safetensors,
    torch_zip,
    zip_bytes,
)
from tests.models_app.test_register import use_local_storage

SECONDS = 3.0


def inspect_bytes(tmp_path, path: str, data: bytes):
    local = tmp_path / "incoming.bin"
    local.write_bytes(data)
    started = time.monotonic()
    result = inspect_file(str(local), path)
    elapsed = time.monotonic() - started
    assert elapsed < SECONDS, f"{path} took {elapsed:.2f} s"
    return result


class RunsACommand:
    """Unpickling this runs ``touch <sentinel>``."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


# ---------------------------------------------------------------------------------------------
# Pickles that run code


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_whose_reduce_runs_a_command_is_flagged_and_never_run(tmp_path, protocol):
    sentinel = tmp_path / "SENTINEL"
    data = pickle.dumps(RunsACommand(sentinel), protocol=protocol)
    result = inspect_bytes(tmp_path, "model.pkl", data)
    assert result.dangerous
    assert any("system" in m for m in levels(result)["danger"])
    assert not sentinel.exists()


def test_the_same_payload_inside_a_pytorch_zip_is_flagged(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    result = inspect_bytes(tmp_path, "model.pt", torch_zip(RunsACommand(sentinel)))
    assert result.dangerous and "posix.system" in result.summary["imports"]
    assert not sentinel.exists()


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


def test_an_uploaded_malicious_pickle_is_marked_on_the_page_and_fails_the_gate(
    local_storage, tmp_path, client_for, owner, reviewer
):
    sentinel = tmp_path / "SENTINEL"
    model = factories.registered_model(owner, "fraud")
    factories.grant(reviewer, model, "review")
    editor = factories.user("dana")
    factories.grant(editor, model, "edit")
    version = factories.version(
        model,
        editor,
        description="d",
        metrics={"auc": 0.9},
        datasets=[{"name": "claims", "role": "train"}],
        files={"model.pkl": pickle.dumps(RunsACommand(sentinel))},
    )
    artifact = version.artifacts.get()
    assert artifact.dangerous and not sentinel.exists()
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert 'class="error inspection-danger"' in html
    assert "⚠ Dangerous" in html and "posix.system" in html

    reviews.version_submit(actor=editor, version=version)
    with pytest.raises(GateFailure, match="No file runs dangerous code when loaded") as refused:
        reviews.review_approve(actor=reviewer, version=version)
    failed = {r.key: r.detail for r in refused.value.results if not r.passed}
    assert "model.pkl: imports posix.system" in failed["dangerous_files"]
    review = client_for(owner).get(reverse("approvals:review", args=[model.slug, 1]))
    assert "No file runs dangerous code when loaded" in review.content.decode()
    # Like every gate, a manager may override it with a reason on record.
    reviews.review_approve(actor=owner, version=version, override_reason="Sandboxed loader.")
    version.refresh_from_db()
    assert version.status == "approved" and not sentinel.exists()


def test_a_pickle_claiming_an_enormous_argument_stops_at_the_cap(tmp_path):
    data = b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"\x00" * 16  # BINBYTES8
    result = inspect_bytes(tmp_path, "x.pkl", data)
    assert result.findings and not result.dangerous


def test_a_truncated_pickle_is_an_error(tmp_path):
    data = pickle.dumps({"a": list(range(100))}, protocol=4)[:40]
    assert "scan stopped" in levels(inspect_bytes(tmp_path, "x.pkl", data))["error"][0]


# ---------------------------------------------------------------------------------------------
# safetensors


def test_safetensors_header_length_of_2_to_the_63_is_refused(tmp_path):
    data = struct.pack("<Q", 2**63) + b"{}" + bytes(64)
    result = inspect_bytes(tmp_path, "x.safetensors", data)
    assert "claims 9,223,372,036,854,775,808 bytes" in levels(result)["error"][0]


def test_a_huge_json_header_is_refused_without_being_read(tmp_path):
    size = 101 * 1024 * 1024
    local = tmp_path / "huge.safetensors"
    with open(local, "wb") as f:
        f.write(struct.pack("<Q", size))
        f.seek(8 + size)
        f.write(b"\x00")  # sparse: 101 MB of "header" nobody should read
    started = time.monotonic()
    result = inspect_file(str(local), "huge.safetensors")
    assert time.monotonic() - started < 1
    assert "headers over 104,857,600 are refused" in levels(result)["warning"][0]


def test_a_deeply_nested_json_header_is_an_error_not_a_crash(tmp_path):
    header = b"[" * 200_000 + b"]" * 200_000
    data = struct.pack("<Q", len(header)) + header
    result = inspect_bytes(tmp_path, "x.safetensors", data)
    assert "nests too deeply" in levels(result)["error"][0]


def test_truncated_safetensors_data_is_an_error(tmp_path):
    data = safetensors({"w": ("F32", [100], [0, 400])})[:-100]
    assert "lie outside" in levels(inspect_bytes(tmp_path, "x.safetensors", data))["error"][0]


# ---------------------------------------------------------------------------------------------
# Zips: bombs and paths out of the folder


def test_a_zip_bomb_is_reported_and_not_expanded(tmp_path):
    bomb = keras_file(**{"config.json": bytes(60 * 1024 * 1024)})  # 60 MB of zeros, deflated
    assert len(bomb) < 1024 * 1024
    result = inspect_bytes(tmp_path, "bomb.keras", bomb)
    messages = levels(result)
    assert any("a zip bomb?" in m for m in messages["warning"])
    assert not result.summary.get("layers")


def test_a_zip_entry_climbing_out_of_its_folder_is_dangerous(tmp_path):
    data = keras_file(**{"../../x": b"owned", "/etc/cron.d/job": b"* * * * * boom"})
    result = inspect_bytes(tmp_path, "model.keras", data)
    dangers = levels(result)["danger"]
    assert any("'../../x' climbs out of the folder" in m for m in dangers)
    assert any("'/etc/cron.d/job' is an absolute path" in m for m in dangers)
    assert not (tmp_path.parent.parent / "x").exists()


def test_a_zip_listing_too_many_entries_is_refused_before_it_is_indexed(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(10_001):
            archive.writestr(f"e{i}", b"")
    result = inspect_bytes(tmp_path, "many.pt", buffer.getvalue())
    assert "10,001 entries" in levels(result)["warning"][0]


def test_a_truncated_zip_is_an_error(tmp_path):
    data = keras_file()[:-30]
    assert levels(inspect_bytes(tmp_path, "x.keras", data))["error"]


def test_a_deeply_nested_keras_config_is_an_error(tmp_path):
    data = zip_bytes({"config.json": b"[" * 100_000 + b"]" * 100_000})
    assert "nests too deeply" in levels(inspect_bytes(tmp_path, "x.keras", data))["error"][0]


# ---------------------------------------------------------------------------------------------
# YAML, ONNX, GGUF


def test_yaml_that_would_run_a_command_is_refused_by_the_safe_loader(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    data = f"flavors: !!python/object/apply:os.system ['touch {sentinel}']\n".encode()
    result = inspect_bytes(tmp_path, "MLmodel", data)
    assert "not valid safe YAML" in levels(result)["error"][0]
    assert not sentinel.exists()


def test_a_billion_laughs_mlmodel_stops_at_the_node_cap(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("flavors: *a8")
    result = inspect_bytes(tmp_path, "MLmodel", "\n".join(lines).encode())
    assert "expands to more than" in levels(result)["warning"][0]


@pytest.mark.parametrize("cut", [3, 50, 200, -7])
def test_a_truncated_onnx_file_is_an_error(tmp_path, cut):
    result = inspect_bytes(tmp_path, "m.onnx", onnx_model()[:cut])
    assert levels(result)["error"]


def test_an_onnx_length_past_the_file_is_an_error(tmp_path):
    data = pb(1, 9) + b"\x3a" + b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 10
    result = inspect_bytes(tmp_path, "m.onnx", data)
    assert "past the end of its message" in levels(result)["error"][0]


def test_gguf_counts_larger_than_the_file_are_an_error(tmp_path):
    data = b"GGUF" + struct.pack("<IQQ", 3, 2**60, 2**60)
    result = inspect_bytes(tmp_path, "m.gguf", data)
    assert "more than 24 bytes can hold" in levels(result)["error"][0]


def test_gguf_string_claiming_exabytes_is_refused(tmp_path):
    data = gguf_file([("general.name", 8, struct.pack("<Q", 2**62) + b"x")])
    result = inspect_bytes(tmp_path, "m.gguf", data)
    assert result.findings and not result.summary.get("metadata")


def test_a_truncated_gguf_file_is_an_error(tmp_path):
    data = gguf_file([("general.architecture", 8, gguf_string("llama"))])[:-3]
    assert "truncated" in levels(inspect_bytes(tmp_path, "m.gguf", data))["error"][0]


def test_an_empty_file_with_a_model_name_is_an_error_not_a_crash(tmp_path):
    for name in ("a.safetensors", "a.onnx", "a.keras", "a.pt", "a.pkl", "a.gguf", "MLmodel"):
        result = inspect_bytes(tmp_path, name, b"")
        assert result.findings, name
