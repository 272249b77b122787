"""The gate "No file runs dangerous code when loaded" fails closed (issue 14, part 3).

Pickles are recognised by content whatever their name, inside every zip and in numpy object
arrays; every global they import must be on the allowlist of model formats; a file that could
not be checked to its end is "not verified". Each of these fails the gate, and only a manager's
override gets a version past it. Legitimate files built the way PyTorch, joblib, numpy and
scikit-learn write them pass.
"""

import collections
import gzip
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
from django.urls import reverse

from approvals import gates
from approvals import services as reviews
from approvals.services import GateFailure
from models_app import inspection
from models_app.inspection import inspect_file
from tests import factories
from tests.models_app.test_inspection import keras_file, levels, torch_zip, zip_bytes
from tests.models_app.test_register import use_local_storage

# The five callables of the report: each runs a command or a program when called.
RUNS_COMMANDS = [
    ("cProfile", "run"),
    ("profile", "run"),
    ("_osx_support", "_read_output"),
    ("pydoc", "pipepager"),
    ("imaplib", "IMAP4_stream"),
]


def protocol0_call(module: str, name: str, argument: str = "touch /tmp/owned") -> bytes:
    """``module.name(argument)`` as a protocol-0 pickle, written by hand."""
    return f"c{module}\n{name}\n(S'{argument}'\ntR.".encode()


def protocol4_call(module: str, name: str, argument: str = "touch /tmp/owned") -> bytes:
    """The same with STACK_GLOBAL (protocols 4 and 5), strings pushed then imported."""

    def short(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    return b"\x80\x04" + short(module) + short(name) + b"\x93" + short(argument) + b"\x85R."


def inspect_bytes(tmp_path, path: str, data: bytes):
    local = tmp_path / "incoming"
    local.write_bytes(data)
    return inspect_file(str(local), path)


def fails_gate(result) -> list[str]:
    """Why a file would fail the gate (what the artifact row keeps of its inspection)."""
    messages = [f["message"] for f in result.findings if f["level"] == "danger"]
    return messages + list(result.summary.get("fails_gate", []))


# ---------------------------------------------------------------------------------------------
# Fake framework modules, so the legitimate files below are pickled by the real pickler under
# the names PyTorch and joblib use (neither library is installed here).


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
        raise AssertionError("never called: the scan does not unpickle")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    torch.FloatStorage = FloatStorage
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class Tensor:
    """Pickles the way torch.Tensor does: _rebuild_tensor_v2 over a persistent storage."""

    def __init__(self, key: str, size: tuple):
        self.key, self.size = key, size

    def __reduce__(self):
        storage = ("storage", sys.modules["torch"].FloatStorage, self.key, "cpu", 6)
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return (rebuild, (_Persistent(storage), 0, self.size, (3, 1), False, {}))


class _Persistent:
    def __init__(self, pid):
        self.pid = pid


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Persistent) else None


def torch_state_dict_zip(entries: int = 1) -> bytes:
    """A PyTorch zip (torch.save) of a state dict: data.pkl, storages, version."""
    buffer = io.BytesIO()
    state = collections.OrderedDict(
        (f"layer{i}.weight", Tensor(str(i), (2, 3))) for i in range(entries)
    )
    _TorchPickler(buffer, protocol=2).dump(state)
    files = {"archive/data.pkl": buffer.getvalue(), "archive/byteorder": b"little"}
    for i in range(entries):
        files[f"archive/data/{i}"] = np.arange(6, dtype="<f4").tobytes()
    files["archive/version"] = b"3\n"
    return zip_bytes(files, zipfile.ZIP_STORED)


@pytest.fixture
def fake_joblib(monkeypatch):
    module = types.ModuleType("joblib.numpy_pickle")

    class NumpyArrayWrapper:
        pass

    NumpyArrayWrapper.__module__ = "joblib.numpy_pickle"
    NumpyArrayWrapper.__qualname__ = "NumpyArrayWrapper"
    module.NumpyArrayWrapper = NumpyArrayWrapper
    monkeypatch.setitem(sys.modules, "joblib", types.ModuleType("joblib"))
    monkeypatch.setitem(sys.modules, "joblib.numpy_pickle", module)
    return NumpyArrayWrapper


def joblib_dump(obj, wrapper_class, *, protocol: int = 4, aligned: bool = True) -> bytes:
    """What joblib.dump writes: each numpy array replaced by a NumpyArrayWrapper and its bytes
    written raw right after it (joblib/numpy_pickle.py, NumpyPickler.save and write_array)."""
    out = io.BytesIO()

    class NumpyPickler(pickle._Pickler):
        def save(self, o, save_persistent_id=True):
            if type(o) is not np.ndarray:
                return super().save(o, save_persistent_id)
            wrapper = wrapper_class()
            wrapper.__dict__.update(
                subclass=np.ndarray, shape=o.shape, order="C", dtype=o.dtype,
                allow_mmap=not o.dtype.hasobject,
                numpy_array_alignment_bytes=16 if aligned else None,
            )  # fmt: skip
            super().save(wrapper)
            if self.proto >= 4:
                self.framer.commit_frame(force=True)
            if o.dtype.hasobject:
                pickle.dump(o, out, protocol=2)
                return None
            if aligned:
                padding = 16 - (out.tell() + 1) % 16
                out.write(bytes([padding]) + b"\xff" * padding)
            out.write(o.tobytes())
            return None

    NumpyPickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


class LogisticRegression:
    """Pickles under scikit-learn's name, the way an estimator is pickled: class + state."""


LogisticRegression.__module__ = "sklearn.linear_model._logistic"


@pytest.fixture
def fake_sklearn(monkeypatch):
    for name in ("sklearn", "sklearn.linear_model", "sklearn.linear_model._logistic"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["sklearn.linear_model._logistic"].LogisticRegression = LogisticRegression


def estimator() -> LogisticRegression:
    model = LogisticRegression()
    model.__dict__.update(
        C=1.0, coef_=np.array([[0.5, -0.25]]), intercept_=np.array([0.1]),
        classes_=np.array([0, 1]), _sklearn_version="1.6.1",
    )  # fmt: skip
    return model


# ---------------------------------------------------------------------------------------------
# What each file is found to be


@pytest.mark.parametrize(("module", "name"), RUNS_COMMANDS)
@pytest.mark.parametrize("build", [protocol0_call, protocol4_call])
def test_the_callables_missing_from_the_denylist_fail_the_gate(tmp_path, module, name, build):
    result = inspect_bytes(tmp_path, "model.pkl", build(module, name))
    assert f"{module}.{name}" in result.summary["imports"]
    assert (
        f"imports {module}.{name}, which is not on the allowlist of model formats."
        in levels(result)["error"]
    )
    assert fails_gate(result)


def test_any_global_off_the_allowlist_fails_by_name(tmp_path):
    data = protocol4_call("acme.helpers", "load_everything")
    result = inspect_bytes(tmp_path, "model.pkl", data)
    assert not result.dangerous
    assert fails_gate(result) == [
        "imports acme.helpers.load_everything, which is not on the allowlist of model formats."
    ]


def test_scikit_learn_functions_are_not_admitted_with_its_classes(tmp_path):
    data = protocol4_call("sklearn.utils._testing", "assert_run_python_script_without_output")
    assert fails_gate(inspect_bytes(tmp_path, "m.pkl", data))
    data = protocol4_call("sklearn.linear_model._base", "make_dataset")
    assert fails_gate(inspect_bytes(tmp_path, "m.pkl", data))


@pytest.mark.parametrize("path", ["pytorch_model.bin", "weights", "config.json", "model.dat"])
def test_a_protocol_0_pickle_is_found_by_content_whatever_its_name(tmp_path, path):
    result = inspect_bytes(tmp_path, path, protocol0_call("os", "system"))
    assert result.format in ("pickle", "pytorch")
    assert result.dangerous and "os.system" in result.summary["imports"]


def test_a_pickle_without_a_protocol_header_is_found_by_content(tmp_path):
    # Protocol-4 opcodes need no PROTO header: pickle.load runs them all the same.
    data = protocol4_call("os", "system")[2:]
    result = inspect_bytes(tmp_path, "tokenizer.model", data)
    assert result.dangerous and "os.system" in result.summary["imports"]


def test_a_compressed_pickle_is_found_by_content(tmp_path):
    result = inspect_bytes(tmp_path, "model", gzip.compress(protocol0_call("os", "system")))
    assert result.dangerous and result.summary["compression"] == "gzip"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("notes.txt", b"hello"),
        ("inference.py", b"import torch\nfrom acme import thing\n"),
        ("conda.yaml", b"channels:\n- defaults\n"),
        ("README.md", b"# A model\n\nIt classifies.\n"),
        ("weights.raw", np.linspace(-1, 1, 4096, dtype="<f4").tobytes()),
    ],
)
def test_text_and_raw_numbers_are_not_mistaken_for_pickles(tmp_path, path, data):
    result = inspect_bytes(tmp_path, path, data)
    assert (result.format, fails_gate(result)) == ("unknown", [])


def test_the_17th_pickle_of_a_pytorch_zip_is_scanned(tmp_path):
    entries = {"archive/data.pkl": pickle.dumps(collections.OrderedDict(w=1), protocol=2)}
    for i in range(15):
        entries[f"archive/extra{i}.pkl"] = pickle.dumps([i], protocol=2)
    entries["archive/payload.pkl"] = protocol0_call("os", "system")
    result = inspect_bytes(tmp_path, "model.pt", zip_bytes(entries))
    assert result.summary["pickle_count"] == 17
    assert result.dangerous and "os.system" in result.summary["imports"]


def test_a_pickle_entry_of_any_name_in_a_zip_is_scanned(tmp_path):
    entries = {
        "archive/data.pkl": pickle.dumps(collections.OrderedDict(w=1), protocol=2),
        "archive/extra/blob": protocol4_call("acme", "run"),
    }
    result = inspect_bytes(tmp_path, "model.pt", zip_bytes(entries))
    assert "acme.run" in result.summary["imports"] and fails_gate(result)


def test_a_pickle_inside_a_keras_archive_or_any_zip_is_scanned(tmp_path):
    keras = keras_file(**{"assets/tokenizer.pkl": protocol0_call("os", "system")})
    assert inspect_bytes(tmp_path, "model.keras", keras).dangerous
    archive = zip_bytes({"model/model.joblib": protocol0_call("os", "system")})
    result = inspect_bytes(tmp_path, "bundle.zip", archive)
    assert result.format == "zip" and result.dangerous


def test_a_zip_past_the_entry_cap_is_not_verified(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(10_001):
            archive.writestr(f"archive/e{i}", b"")
    result = inspect_bytes(tmp_path, "model.pt", buffer.getvalue())
    assert fails_gate(result) == ["Not verified: the zip lists 10,001 entries; more than 10,000."]


def test_a_pickle_that_does_not_parse_is_not_verified(tmp_path):
    data = pickle.dumps({"a": list(range(100))}, protocol=4)[:40]
    result = inspect_bytes(tmp_path, "model.pkl", data)
    [reason] = fails_gate(result)
    assert reason.startswith("Not verified: scan stopped: not a valid pickle at byte")


def test_a_command_before_a_parse_error_is_still_named(tmp_path):
    # pickle.load runs everything up to the broken opcode.
    data = protocol0_call("acme", "run")[:-1] + b"\xff\xff"
    result = inspect_bytes(tmp_path, "pytorch_model.bin", data)
    reasons = fails_gate(result)
    assert "imports acme.run, which is not on the allowlist of model formats." in reasons
    assert any(r.startswith("Not verified: scan stopped") for r in reasons)


def test_data_after_the_first_pickle_is_scanned_too(tmp_path):
    data = pickle.dumps([1, 2], protocol=2) + protocol0_call("os", "system")
    assert inspect_bytes(tmp_path, "model.pkl", data).dangerous


def test_the_fifth_pickle_of_a_legacy_pytorch_file_is_scanned(tmp_path):
    legacy = b"".join(pickle.dumps(x, protocol=2) for x in (1, 1001, {"sys": 1}, {"w": 1}))
    legacy += b"\x80\x02" + protocol0_call("os", "system")
    result = inspect_bytes(tmp_path, "old.pth", legacy + bytes(64))
    assert result.dangerous


def test_the_upload_time_budget_running_out_leaves_files_not_verified():
    results = inspection.inspect_all(
        [("a.pkl", lambda seconds: inspection.Inspection("pickle"))], seconds=0
    )
    assert fails_gate(results["a.pkl"]) == [
        "Not verified: the upload's inspection time ran out before this file."
    ]


def test_a_file_whose_time_ran_out_is_not_verified(tmp_path):
    data = pickle.dumps(list(range(20_000)), protocol=0)
    local = tmp_path / "incoming"
    local.write_bytes(data)
    result = inspect_file(str(local), "model.pkl", seconds=0.0)
    assert any(r.startswith("Not verified: inspection stopped") for r in fails_gate(result))


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("touch /tmp/owned",))


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("path", ["embeddings.npy", "embeddings.bin"])
def test_an_object_npy_array_with_a_command_fails_the_gate(tmp_path, path):
    result = inspect_bytes(tmp_path, path, npy(np.array([RunsACommand(), 1], dtype=object)))
    assert result.format == "numpy" and result.dangerous


def test_an_object_npz_array_with_an_import_off_the_allowlist_fails_the_gate(tmp_path):
    # An import off the allowlist in the object array's pickle (same length, so it parses).
    bad = npy(np.array([1], dtype=object)).replace(b"numpy._core", b"acmes._core")
    data = zip_bytes({"ok.npy": npy(np.arange(3)), "bad.npy": bad})
    result = inspect_bytes(tmp_path, "arrays.npz", data)
    assert (
        "bad.npy: imports acmes._core.multiarray._reconstruct, which is not on the allowlist "
        "of model formats." in fails_gate(result)
    )


def test_numpy_arrays_of_numbers_and_of_plain_objects_pass(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, w=np.arange(6.0).reshape(2, 3), labels=np.array(["cat", 7], dtype=object))
    result = inspect_bytes(tmp_path, "arrays.npz", buffer.getvalue())
    assert result.format == "numpy" and fails_gate(result) == []
    assert inspect_bytes(tmp_path, "w.npy", npy(np.arange(4.0))).summary.get("fails_gate") is None


def test_a_truncated_npy_object_array_is_not_verified(tmp_path):
    data = npy(np.array(["a", "b"], dtype=object))[:-5]
    assert fails_gate(inspect_bytes(tmp_path, "x.npy", data))[0].startswith("Not verified")


# ---------------------------------------------------------------------------------------------
# Legitimate files pass


def test_a_pytorch_state_dict_passes(tmp_path, fake_torch):
    result = inspect_bytes(tmp_path, "pytorch_model.bin", torch_state_dict_zip(entries=20))
    assert result.summary["imports"] == [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"
    ]  # fmt: skip
    assert result.summary["storages"] == 20
    assert fails_gate(result) == [] and not result.failed


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_a_scikit_learn_estimator_passes_at_every_protocol(tmp_path, fake_sklearn, protocol):
    data = pickle.dumps(estimator(), protocol=protocol)
    result = inspect_bytes(tmp_path, "model", data)  # no name: found by content
    assert result.format == "pickle"
    assert "sklearn.linear_model._logistic.LogisticRegression" in result.summary["imports"]
    assert fails_gate(result) == []


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_joblib_file_with_arrays_stored_raw_passes(
    tmp_path, fake_sklearn, fake_joblib, aligned, protocol
):
    model = estimator()
    model.__dict__["coef_"] = np.linspace(-1, 1, 3000).reshape(1, 3000)
    model.__dict__["names_"] = np.array(["a", "b"], dtype=object)
    data = joblib_dump(model, fake_joblib, protocol=protocol, aligned=aligned)
    result = inspect_bytes(tmp_path, "model.joblib", data)
    assert result.summary["joblib_arrays"] == 4
    assert fails_gate(result) == [], result.findings


def test_a_command_after_joblib_array_data_is_found(tmp_path, fake_joblib):
    data = joblib_dump([np.arange(4.0), RunsACommand()], fake_joblib)
    assert inspect_bytes(tmp_path, "model.joblib", data).dangerous


def test_array_data_that_pickle_load_would_run_is_not_verified(tmp_path, fake_joblib):
    # joblib skips the array's bytes; pickle.load of the same file reads them as opcodes.
    instructions = protocol0_call("os", "system")[:-1]
    array = np.frombuffer(instructions + b"\x00" * (-len(instructions) % 8), dtype="u1")
    data = joblib_dump([array], fake_joblib, aligned=False)
    assert fails_gate(inspect_bytes(tmp_path, "model.pkl", data))


def test_the_existing_torch_zip_helper_still_passes(tmp_path):
    result = inspect_bytes(tmp_path, "model.pt", torch_zip(collections.OrderedDict(w=1)))
    assert fails_gate(result) == []


# ---------------------------------------------------------------------------------------------
# The gate and the approval


@pytest.fixture
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner, reviewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(reviewer, model, "review")
    return model


def draft(model, owner, files):
    return factories.version(
        model, owner, description="d", metrics={"auc": 0.9},
        datasets=[{"name": "claims", "role": "train"}], files=files,
    )  # fmt: skip


def dangerous_files_gate(version):
    results = gates.evaluate(version, policy=gates.policy_for(version.model), production=None)
    return next(r for r in results if r.key == "dangerous_files")


@pytest.mark.parametrize(
    ("files", "named"),
    [
        ({"model.pkl": protocol0_call("cProfile", "run")}, "cProfile.run"),
        ({"model.pkl": protocol4_call("pydoc", "pipepager")}, "pydoc.pipepager"),
        ({"pytorch_model.bin": protocol0_call("acme", "run")}, "acme.run"),
        ({"model.pkl": pickle.dumps([1], protocol=4)[:-3]}, "Not verified"),
    ],
)
def test_the_gate_names_the_file_and_the_global(local_storage, model, owner, files, named):
    version = draft(model, owner, files)
    gate = dangerous_files_gate(version)
    [path] = files
    assert not gate.passed
    assert gate.detail.startswith(f"{path}: ") and named in gate.detail


def test_legitimate_files_pass_the_gate(local_storage, model, owner, fake_torch, fake_sklearn):
    version = draft(
        model, owner,
        {"model.pt": torch_state_dict_zip(), "clf.pkl": pickle.dumps(estimator(), protocol=4),
         "notes.txt": b"hello"},
    )  # fmt: skip
    gate = dangerous_files_gate(version)
    assert gate.passed, gate.detail
    assert "2 execute code when loaded, importing only globals on the allowlist" in gate.detail


def test_a_file_not_verified_in_time_fails_the_gate(local_storage, model, owner, monkeypatch):
    monkeypatch.setattr(inspection, "VERSION_SECONDS", 0.0)
    version = draft(model, owner, {"weights.safetensors": b"anything"})
    gate = dangerous_files_gate(version)
    assert not gate.passed
    assert gate.detail == (
        "weights.safetensors: Not verified: the upload's inspection time ran out before this file."
    )


def test_files_inspected_before_the_allowlist_fail_the_gate(local_storage, model, owner):
    version = draft(model, owner, {"model.pkl": pickle.dumps([1], protocol=4)})
    artifact = version.artifacts.get()
    # What the denylist-only inspection recorded: executes code, no allowlist check.
    artifact.inspection = {"executes_code": True, "imports": []}
    artifact.save(update_fields=["inspection"])
    gate = dangerous_files_gate(version)
    assert not gate.passed and "checked against the allowlist" in gate.detail


def test_approving_a_version_whose_file_is_not_verified_needs_the_override(
    local_storage, model, owner, reviewer
):
    editor = factories.user("dana")
    factories.grant(editor, model, "edit")
    version = draft(model, editor, {"pytorch_model.bin": protocol0_call("profile", "run")})
    reviews.version_submit(actor=editor, version=version)
    with pytest.raises(GateFailure, match="No file runs dangerous code when loaded") as refused:
        reviews.review_approve(actor=reviewer, version=version)
    failed = {r.key: r.detail for r in refused.value.results if not r.passed}
    assert "pytorch_model.bin: " in failed["dangerous_files"]
    assert "profile.run" in failed["dangerous_files"]
    version.refresh_from_db()
    assert version.status == "in_review"
    # A reviewer without the manage role cannot override; a manager can, with a reason.
    with pytest.raises(GateFailure, match="manage role"):
        reviews.review_approve(actor=reviewer, version=version, override_reason="Trust me.")
    reviews.review_approve(actor=owner, version=version, override_reason="Sandboxed loader.")
    version.refresh_from_db()
    assert version.status == "approved"


def test_the_model_card_says_which_files_fail_the_gate(local_storage, model, owner, client_for):
    version = draft(model, owner, {"model.pkl": protocol4_call("acme", "run")})
    url = reverse("models_app:card_markdown", args=[model.slug, version.number])
    text = client_for(owner).get(url).content.decode()
    assert (
        "FAILS THE FILE GATE: imports acme.run, which is not on the allowlist of model formats."
        in text
    )


@pytest.mark.parametrize(
    ("module", "name", "passes"),
    [
        ("sklearn.tree._tree", "Tree", True),
        ("sklearn.ensemble._forest", "RandomForestClassifier", True),
        ("sklearn.model_selection._search", "GridSearchCV", True),
        ("sklearn.model_selection._validation", "cross_validate", False),
        ("sklearn.tree._tree", "__pyx_unpickle_Tree", True),
        ("__torch__.model", "Net", True),
        ("scipy.sparse._csr", "csr_matrix", True),
        ("sklearn.linear_model", "enet_path", False),  # a function of an admitted family
        ("sklearn.utils", "Parallel", False),  # a family that is not admitted
        ("sklearn", "show_versions", False),
        ("numpy", "load", False),
        ("torch.storage", "_load_from_bytes", False),
    ],
)
def test_the_allowlist_admits_classes_of_chosen_families_only(tmp_path, module, name, passes):
    result = inspect_bytes(tmp_path, "model.pkl", protocol4_call(module, name))
    assert (fails_gate(result) == []) is passes
