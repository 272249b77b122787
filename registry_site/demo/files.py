"""Artifact files of the demo in several formats, written byte by byte so the demo needs no ML
package: safetensors, ONNX, Keras and an MLflow model folder. Inspection then has real files
to read."""

import collections
import io
import json
import pickle
import struct
import zipfile


def safetensors(tensors: dict[str, tuple[str, list[int]]], metadata: dict) -> bytes:
    """A real (tiny) safetensors file: 8-byte header length, JSON header, zeroed data."""
    sizes = {"F32": 4, "F16": 2, "I64": 8}
    header, offset = {"__metadata__": metadata}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def protobuf_field(number: int, value) -> bytes:
    """One protobuf field: a varint for ints, length-delimited for text and bytes."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def onnx_classifier(inputs: int = 64, classes: int = 12) -> bytes:
    """A real ONNX ModelProto (logits = features · W + b), written field by field so the demo
    needs no onnx package."""
    pb = protobuf_field

    def value_info(name: str, dims: list) -> bytes:
        shape = b"".join(pb(1, pb(2, d) if isinstance(d, str) else pb(1, d)) for d in dims)
        return pb(1, name) + pb(2, pb(1, pb(1, 1) + pb(2, shape)))  # FLOAT tensor

    def initializer(name: str, dims: list[int]) -> bytes:
        count = 1
        for d in dims:
            count *= d
        dims_pb = b"".join(pb(1, d) for d in dims)
        return dims_pb + pb(2, 1) + pb(8, name) + pb(9, bytes(4 * count))

    def node(op: str, ins: list[str], outs: list[str]) -> bytes:
        return b"".join(pb(1, i) for i in ins) + b"".join(pb(2, o) for o in outs) + pb(4, op)

    graph = (
        pb(1, node("MatMul", ["features", "W"], ["hidden"]))
        + pb(1, node("Add", ["hidden", "b"], ["logits"]))
        + pb(2, "ticket-triage-lite")
        + pb(5, initializer("W", [inputs, classes]))
        + pb(5, initializer("b", [classes]))
        + pb(11, value_info("features", ["batch", inputs]))
        + pb(12, value_info("logits", ["batch", classes]))
    )
    opset = pb(1, "") + pb(2, 17)
    return pb(1, 9) + pb(2, "registry-demo") + pb(3, "1.0") + pb(7, graph) + pb(8, opset)


def keras_archive(inputs: int = 64, classes: int = 12) -> bytes:
    """A Keras v3 .keras archive: config, metadata and a (placeholder) weights file."""
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, inputs], "dtype": "float32", "name": "features"}},
        {"module": "keras.layers", "class_name": "Dense",
         "config": {"name": "hidden", "units": 32, "activation": "relu"}},
        {"module": "keras.layers", "class_name": "Dense",
         "config": {"name": "logits", "units": classes, "activation": "linear"}},
    ]  # fmt: skip
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "ticket_triage_lite", "layers": layers},
        "build_config": {"input_shape": [None, inputs]},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "metadata.json",
            json.dumps({"keras_version": "3.8.0", "date_saved": "2026-03-02@10:14:55"}),
        )
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(512))
    return buffer.getvalue()


# An MLflow model folder: framework, signature and requirements come from MLmodel.
MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.12.3
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: pickle
    sklearn_version: 1.6.1
mlflow_version: 3.1.0
model_size_bytes: 2048
model_uuid: 5f0e3c1d2b7a4e8f9a6b1c2d3e4f5a6b
signature:
  inputs: '[{"type": "string", "name": "subject", "required": true}, {"type": "string",
    "name": "body", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
utc_time_created: '2026-03-20 09:41:07.123456'
"""
PYTHON_ENV = "python: 3.12.3\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
CONDA = (
    "channels:\n- conda-forge\ndependencies:\n- python=3.12.3\n- pip\n- pip:\n"
    "  - -r requirements.txt\n"
)
REQUIREMENTS = "mlflow==3.1.0\nscikit-learn==1.6.1\nnumpy==2.1.0\n"


def pickled_weights() -> bytes:
    """The MLflow folder's model.pkl: a pickled OrderedDict of coefficients."""
    return pickle.dumps(collections.OrderedDict(coef=[0.1] * 12, intercept=0.0), protocol=4)
