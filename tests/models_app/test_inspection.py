"""Inspection reads model files' headers (never executing them) and says what they are.

The builders at the top make small files of every format in memory; the malicious inputs are
in test_inspection_malicious.py."""

import collections
import io
import json
import pickle
import struct
import time
import zipfile

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from models_app import services, storage
from models_app.inspection import inspect_file, inspect_stored
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion
from registry_site.demo.files import protobuf_field as pb
from tests import factories
from tests.models_app.test_register import use_local_storage

# ---------------------------------------------------------------------------------------------
# Builders


def safetensors(tensors: dict, metadata: dict | None = None, *, data: bytes | None = None) -> bytes:
    """tensors: {name: (dtype, shape, [begin, end])}."""
    header = {"__metadata__": metadata} if metadata is not None else {}
    end = 0
    for name, (dtype, shape, offsets) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
        end = max(end, offsets[1])
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + (bytes(end) if data is None else data)


def onnx_model(*, external: str = "") -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((64, 12), dtype=np.float32), "W")
    if external:
        weights.data_location = TensorProto.EXTERNAL
        del weights.external_data[:]
        entry = weights.external_data.add()
        entry.key, entry.value = "location", external
        weights.ClearField("raw_data")
    bias = numpy_helper.from_array(np.zeros((12,), dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["hidden"]),
            helper.make_node("Add", ["hidden", "b"], ["logits"]),
        ],
        "classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 12])],
        [weights, bias],
    )
    model = helper.make_model(
        graph, producer_name="pytorch", producer_version="2.5.1",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )  # fmt: skip
    helper.set_model_props(model, {"author": "tests"})
    return model.SerializeToString()


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def keras_file(layers: list | None = None, **extra_entries) -> bytes:
    layers = layers or [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 28, 28], "name": "image"}},
        {"module": "keras.layers", "class_name": "Flatten", "config": {}},
        {"module": "keras.layers", "class_name": "Dense", "config": {"units": 10}},
    ]  # fmt: skip
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": layers}}
    return zip_bytes(
        {
            "metadata.json": json.dumps({"keras_version": "3.8.0"}).encode(),
            "config.json": json.dumps(config).encode(),
            "model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(64),
            **extra_entries,
        }
    )


def torch_zip(obj, protocol: int = 2) -> bytes:
    return zip_bytes(
        {
            "archive/data.pkl": pickle.dumps(obj, protocol=protocol),
            "archive/byteorder": b"little",
            "archive/data/0": bytes(48),
            "archive/version": b"3\n",
        },
        zipfile.ZIP_STORED,
    )


def gguf_file(metadata: list[tuple[str, int, bytes]], tensors: int = 0, version: int = 3) -> bytes:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    body = b"".join(
        string(key) + struct.pack("<I", vtype) + value for key, vtype, value in metadata
    )
    return b"GGUF" + struct.pack("<IQQ", version, tensors, len(metadata)) + body


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def saved_model_pb(*, ops: tuple[str, ...] = ("MatMul",)) -> bytes:
    """A SavedModel proto: one meta graph with tags, a TF version, a signature, and nodes."""
    meta_info = pb(4, "serve") + pb(5, "2.18.0")
    graph_def = b"".join(pb(1, pb(1, f"node{i}") + pb(2, op)) for i, op in enumerate(ops))
    signature = pb(1, "serving_default") + pb(2, pb(3, "tensorflow/serving/predict"))
    meta_graph = pb(1, meta_info) + pb(2, graph_def) + pb(5, signature)
    return pb(1, 1) + pb(2, meta_graph)


MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.12.1
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.6.1
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "double", "name": "amount", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
"""


def inspect_bytes(tmp_path, path: str, data: bytes):
    local = tmp_path / "incoming"
    local.write_bytes(data)
    started = time.monotonic()
    result = inspect_file(str(local), path)
    assert time.monotonic() - started < 3, "inspection must stay within its time cap"
    return result


def levels(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in result.findings:
        out.setdefault(f["level"], []).append(f["message"])
    return out


# ---------------------------------------------------------------------------------------------
# safetensors


def test_safetensors_header_is_summarised(tmp_path):
    data = safetensors(
        {"emb.weight": ("F32", [10, 4], [0, 160]), "emb.bias": ("BF16", [4], [160, 168])},
        {"format": "pt", "source": "hub"},
    )
    result = inspect_bytes(tmp_path, "model.safetensors", data)
    assert result.format == "safetensors" and not result.findings
    assert result.summary["tensors"] == 2
    assert result.summary["parameters"] == 44
    assert result.summary["dtypes"] == {"BF16": 1, "F32": 1}
    assert result.summary["metadata"] == {"format": "pt", "source": "hub"}
    assert result.framework() == ("pytorch", "")


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (("F32", [10, 4], [0, 999]), "lie outside the 160 data bytes"),
        (("F32", [10, 5], [0, 160]), "needs 200 bytes but data_offsets span 160"),
        (("Q7", [10, 4], [0, 160]), "unknown dtype 'Q7'"),
        (("F32", [-1, 4], [0, 160]), "shape sizes must be whole numbers"),
    ],
)
def test_safetensors_entries_are_checked_against_each_other_and_the_file(tmp_path, tensor, message):
    data = safetensors({"w": tensor}, data=bytes(160))
    result = inspect_bytes(tmp_path, "bad.safetensors", data)
    assert any(message in m for m in levels(result)["error"]), result.findings


def test_safetensors_overlapping_tensors_are_an_error(tmp_path):
    data = safetensors({"a": ("F32", [4], [0, 16]), "b": ("F32", [4], [8, 24])}, data=bytes(24))
    assert "overlaps" in levels(inspect_bytes(tmp_path, "x.safetensors", data))["error"][0]


# ---------------------------------------------------------------------------------------------
# ONNX


def test_onnx_model_is_read_without_the_onnx_package(tmp_path, monkeypatch):
    import sys

    data = onnx_model()
    monkeypatch.setitem(sys.modules, "onnx", None)  # importing onnx would now fail
    result = inspect_bytes(tmp_path, "model.onnx", data)
    s = result.summary
    assert result.format == "onnx" and not result.findings
    assert s["ir_version"] >= 8 and s["producer_name"] == "pytorch"
    assert {"domain": "", "version": 17} in s["opset_import"]
    assert {"domain": "ai.onnx.ml", "version": 3} in s["opset_import"]
    assert s["metadata"] == {"author": "tests"}
    graph = s["graph"]
    assert graph["inputs"] == [
        {"name": "features", "type": "tensor", "elem_type": "float32", "shape": ["batch", 64]}
    ]
    assert graph["outputs"][0]["shape"] == ["batch", 12]
    assert graph["initializers"] == 2 and graph["parameters"] == 64 * 12 + 12
    assert graph["operators"] == {"Add": 1, "MatMul": 1}
    assert result.framework() == ("onnx", "opset 17")


def test_onnx_external_weights_are_named_never_opened(tmp_path):
    result = inspect_bytes(tmp_path, "model.onnx", onnx_model(external="../../etc/passwd"))
    assert any(
        "external file '../../etc/passwd' (not read)" in m for m in levels(result)["warning"]
    )


# ---------------------------------------------------------------------------------------------
# Keras, PyTorch, pickles


def test_keras_file_reports_version_layers_and_input_shape(tmp_path):
    result = inspect_bytes(tmp_path, "digits.keras", keras_file())
    s = result.summary
    assert result.format == "keras" and not result.dangerous and not result.findings
    assert (s["keras_version"], s["class_name"], s["layers"]) == ("3.8.0", "Sequential", 3)
    assert s["input_shape"] == [None, 28, 28]
    assert s["weights"] == ["model.weights.h5"]


def test_keras_lambda_layer_is_dangerous_and_custom_modules_are_named(tmp_path):
    layers = [
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}}},
        {"module": "acme.layers", "class_name": "Magic", "config": {}},
    ]  # fmt: skip
    result = inspect_bytes(tmp_path, "odd.keras", keras_file(layers))
    assert result.dangerous
    assert "Python bytecode" in levels(result)["danger"][0]
    assert "'acme.layers'" in levels(result)["warning"][0]


def test_pytorch_zip_lists_the_globals_its_pickle_imports(tmp_path):
    result = inspect_bytes(tmp_path, "model.pt", torch_zip(collections.OrderedDict(w=1)))
    assert result.format == "pytorch" and not result.dangerous
    assert result.summary["imports"] == ["collections.OrderedDict"]
    assert result.summary["pickles"] == ["archive/data.pkl"]
    assert result.summary["executes_code"] is True
    assert "Executes code when loaded" in levels(result)["info"][0]


def test_legacy_pytorch_file_is_scanned_across_its_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    legacy = b"".join(pickle.dumps(x, protocol=2) for x in (1, 1001, {"sys": 1}, Evil(), ["k"]))
    result = inspect_bytes(tmp_path, "old.pth", legacy + bytes(64))
    assert result.summary["layout"] == "legacy"
    assert result.dangerous and "posix.system" in result.summary["imports"]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_pickle_imports_are_listed_and_not_dangerous(tmp_path, protocol):
    data = pickle.dumps(collections.OrderedDict(a=[1, 2], b={"c": 3}), protocol=protocol)
    result = inspect_bytes(tmp_path, "model.pkl", data)
    assert result.format == "pickle" and not result.dangerous
    assert result.summary["imports"] == ["collections.OrderedDict"]


def test_numpy_and_sklearn_like_pickles_name_their_framework(tmp_path):
    import numpy as np

    result = inspect_bytes(tmp_path, "arr.pkl", pickle.dumps(np.arange(3)))
    assert not result.dangerous and any("numpy" in i for i in result.summary["imports"])
    fake = b"\x80\x02csklearn.linear_model._logistic\nLogisticRegression\n)\x81}b."
    result = inspect_bytes(tmp_path, "clf.pkl", fake)
    assert result.summary["imports"] == ["sklearn.linear_model._logistic.LogisticRegression"]
    assert result.framework() == ("scikit-learn", "")


@pytest.mark.parametrize("compress", ["gzip", "zlib", "bz2", "xz"])
def test_compressed_joblib_files_are_scanned(tmp_path, compress):
    import bz2
    import gzip
    import lzma
    import zlib

    raw = pickle.dumps(collections.OrderedDict(a=1), protocol=4)
    data = {"gzip": gzip.compress, "zlib": zlib.compress, "bz2": bz2.compress,
            "xz": lzma.compress}[compress](raw)  # fmt: skip
    result = inspect_bytes(tmp_path, "model.joblib", data)
    assert result.format == "joblib" and result.summary["compression"] == compress
    assert result.summary["imports"] == ["collections.OrderedDict"]


def test_an_import_hidden_behind_pops_and_the_memo_is_still_named(tmp_path):
    # Push "collections OrderedDict" as decoys, pop them, then fetch "os"/"system" back from
    # the memo: a scanner that only looks at the last two strings would name the decoy.
    data = (
        b"\x80\x04"
        b"\x8c\x02os\x94"  # memo 0 = "os"
        b"\x8c\x06system\x94"  # memo 1 = "system"
        b"00"  # POP POP
        b"\x8c\x0bcollections\x8c\x0bOrderedDict00"  # decoys, popped
        b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        b"\x8c\x04true\x85R."
    )
    result = inspect_bytes(tmp_path, "sneaky.pkl", data)
    assert result.summary["imports"] == ["os.system"]
    assert result.dangerous


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"), ("builtins", "exec"), ("__builtin__", "open"),
        ("subprocess", "Popen"), ("nt", "system"), ("shutil", "rmtree"), ("socket", "socket"),
        ("runpy", "run_path"),
        ("importlib", "import_module"), ("pty", "spawn"), ("sys", "modules"),
        ("operator", "methodcaller"),
    ],
)  # fmt: skip
def test_dangerous_globals_are_marked(tmp_path, module, name):
    data = f"c{module}\n{name}\n(S'x'\ntR.".encode()
    result = inspect_bytes(tmp_path, "x.pkl", data)
    assert result.dangerous, (module, name)
    assert f"{module}.{name}" in result.summary["imports"]


# ---------------------------------------------------------------------------------------------
# GGUF, MLmodel, SavedModel, unknown


def test_gguf_header_and_a_few_keys(tmp_path):
    vocab = struct.pack("<IQ", 8, 3) + gguf_string("a") + gguf_string("b") + gguf_string("c")
    data = gguf_file(
        [
            ("general.architecture", 8, gguf_string("llama")),
            ("general.name", 8, gguf_string("Tiny Llama")),
            ("llama.context_length", 4, struct.pack("<I", 4096)),
            ("tokenizer.ggml.tokens", 9, vocab),
            ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + bytes(12)),
        ],
        tensors=0,
    )
    result = inspect_bytes(tmp_path, "tiny.gguf", data)
    s = result.summary
    assert result.format == "gguf" and not result.findings
    assert (s["gguf_version"], s["tensors"], s["metadata_count"]) == (3, 0, 5)
    assert s["architecture"] == "llama"
    assert s["metadata"]["llama.context_length"] == 4096
    assert "tokenizer.ggml.tokens" not in s["metadata"]


def test_mlmodel_flavors_signature_and_environment(tmp_path):
    result = inspect_bytes(tmp_path, "model/MLmodel", MLMODEL.encode())
    s = result.summary
    assert result.format == "mlflow-model"
    assert s["flavors"] == ["python_function", "sklearn"]
    assert (s["framework"], s["framework_version"]) == ("scikit-learn", "1.6.1")
    assert s["python_version"] == "3.12.1"
    assert s["signature"]["inputs"] == [{"type": "double", "name": "amount", "required": True}]
    assert s["requirements_files"] == ["requirements.txt", "conda.yaml", "python_env.yaml"]
    assert "executes code when loaded" in levels(result)["info"][0]


def test_saved_model_protobuf_is_read(tmp_path):
    result = inspect_bytes(
        tmp_path, "export/saved_model.pb", saved_model_pb(ops=("MatMul", "ReadFile"))
    )
    s = result.summary
    assert result.format == "tensorflow-savedmodel"
    assert (s["tags"], s["tensorflow_version"], s["signatures"]) == (
        ["serve"], "2.18.0", ["serving_default"]
    )  # fmt: skip
    assert "ReadFile (reads files)" in levels(result)["warning"][0]


def test_unknown_files_are_recorded_as_unknown(tmp_path):
    result = inspect_bytes(tmp_path, "notes.txt", b"hello")
    assert (result.format, result.summary, result.findings) == ("unknown", {}, [])


# ---------------------------------------------------------------------------------------------
# On upload: the version records what its files are


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "fraud")


def test_every_uploaded_file_is_inspected_and_shown_on_the_version_page(
    local_storage, client_for, model, owner
):
    version = factories.version(
        model,
        owner,
        files={
            "model.onnx": onnx_model(),
            "weights.safetensors": safetensors({"w": ("F32", [2, 2], [0, 16])}),
            "notes.txt": b"hello",
        },
    )
    formats = dict(version.artifacts.values_list("path", "format"))
    assert formats == {"model.onnx": "onnx", "weights.safetensors": "safetensors",
                       "notes.txt": "unknown"}  # fmt: skip
    assert (version.framework, version.framework_version) == ("onnx", "opset 17")
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert "<th>Inspection</th>" in html
    assert "features float32[batch, 64] → logits float32[batch, 12]" in html
    assert reverse("models_app:version_card", args=[model.slug, version.number]) in html


def test_a_framework_the_user_gave_is_kept(local_storage, model, owner):
    version = factories.version(model, owner, framework="custom", files={"m.onnx": onnx_model()})
    assert version.framework == "custom" and version.framework_version == ""


def test_mlmodel_fills_signature_requirements_and_python_when_empty(local_storage, model, owner):
    version = factories.version(
        model,
        owner,
        files={
            "model/MLmodel": MLMODEL.encode(),
            "model/model.pkl": pickle.dumps(collections.OrderedDict(a=1)),
            "model/requirements.txt": b"scikit-learn==1.6.1\nnumpy>=2\n",
        },
    )
    version.refresh_from_db()
    assert (version.framework, version.framework_version) == ("scikit-learn", "1.6.1")
    assert version.python_version == "3.12.1"
    assert version.signature["outputs"] == [{"type": "long", "required": True}]
    assert set(version.dependencies.values_list("name", flat=True)) == {"numpy", "scikit-learn"}
    created = AuditEvent.objects.get(action="version.created", target_id=str(version.pk))
    assert created.after["filled_from_files"] == [
        "framework", "framework_version", "python_version", "requirements", "signature",
    ]  # fmt: skip
    assert created.after["formats"]["model/MLmodel"] == "mlflow-model"


def test_mlmodel_never_overrides_what_the_user_gave(local_storage, model, owner):
    version = factories.version(
        model,
        owner,
        framework="sklearn",
        requirements="scikit-learn==1.5.0",
        signature={"inputs": []},
        files={"MLmodel": MLMODEL.encode(), "requirements.txt": b"other==1.0\n"},
    )
    version.refresh_from_db()
    assert version.framework == "sklearn" and version.framework_version == ""
    assert version.requirements == "scikit-learn==1.5.0"
    assert version.signature == {"inputs": []}


def test_files_added_to_a_draft_fill_an_empty_framework(local_storage, model, owner):
    version = factories.version(model, owner)
    services.artifact_add(
        actor=owner,
        version=version,
        files=[storage.incoming_from_bytes("digits.keras", keras_file())],
    )
    version.refresh_from_db()
    assert (version.framework, version.framework_version) == ("keras", "3.8.0")
    assert version.artifacts.get().format == "keras"


def test_saved_model_folder_is_understood_from_the_version_paths(local_storage, model, owner):
    version = factories.version(
        model,
        owner,
        files={
            "export/saved_model.pb": saved_model_pb(),
            "export/variables/variables.index": b"idx",
            "export/variables/variables.data-00000-of-00001": b"data",
        },
    )
    artifact = version.artifacts.get(path="export/saved_model.pb")
    assert artifact.format == "tensorflow-savedmodel"
    assert artifact.inspection["folder"] == "export" and artifact.inspection["variables"] == 2
    assert (version.framework, version.framework_version) == ("tensorflow", "2.18.0")
    alone = factories.version(model, owner, files={"saved_model.pb": saved_model_pb()})
    assert "No variables/ folder" in alone.artifacts.get().findings[0]["message"]


def test_adopted_files_on_s3_are_inspected_with_ranged_reads(s3_storage, model, owner):
    key = storage.new_storage_key(model.pk)
    data = onnx_model() + b""
    s3_storage.save(key, io.BytesIO(data))
    import hashlib

    adopted = storage.StoredFile("model.onnx", key, len(data), hashlib.sha256(data).hexdigest())
    version = services.version_create(
        actor=owner, model=model, metadata=parse_metadata({}), adopt=[adopted]
    )
    artifact = version.artifacts.get()
    assert artifact.format == "onnx" and artifact.inspection["graph"]["initializers"] == 2
    assert inspect_stored(key, "model.onnx", len(data)).summary == artifact.inspection


def test_the_version_page_query_count_does_not_grow_with_inspected_files(
    local_storage, client_for, model, owner, assert_constant_queries
):
    version = factories.version(model, owner, files={"a.pkl": pickle.dumps({"a": 1})})
    c = client_for(owner)

    def request():
        assert c.get(version.get_absolute_url()).status_code == 200

    def grow():
        from models_app.models import Artifact

        Artifact.objects.bulk_create(
            Artifact(
                version=version,
                path=f"f{i}.pkl",
                size=1,
                sha256="0" * 64,
                storage_key=f"artifacts/x/{i}",
                format="pickle",
                inspection={"imports": ["os.system"], "executes_code": True},
                dangerous=True,
                findings=[{"level": "danger", "message": "imports os.system"}],
            )  # fmt: skip
            for i in range(300)
        )

    assert_constant_queries(request, grow)
    assert ModelVersion.objects.get(pk=version.pk).artifacts.count() == 301


# ---------------------------------------------------------------------------------------------
# The demo's files


def test_the_demo_onnx_file_written_by_hand_is_a_valid_onnx_model():
    import onnx

    from registry_site.demo.files import onnx_classifier

    model = onnx.load_from_string(onnx_classifier())
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["features"]


def test_the_demo_has_files_of_several_formats_and_a_fine_tuned_chain(db, capsys):
    from django.core.management import call_command

    from models_app.lineage import lineage_graph
    from models_app.models import Artifact

    call_command("seed_demo")
    formats = set(Artifact.objects.values_list("format", flat=True))
    assert {"safetensors", "onnx", "keras", "pickle", "mlflow-model"} <= formats
    assert not Artifact.objects.filter(dangerous=True).exists()
    pickled = Artifact.objects.get(path="model/model.pkl")
    assert pickled.inspection["imports"] == ["collections.OrderedDict"]
    v3 = ModelVersion.objects.get(model__slug="ticket-triage-lite", number=3)
    owner = v3.model.owner
    assert lineage_graph(v3, owner).ancestors >= 3
