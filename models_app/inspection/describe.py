"""What a person reads about a file: its format's name and one line from its stored inspection
summary."""

LABELS = {
    "safetensors": "safetensors",
    "onnx": "ONNX",
    "keras": "Keras",
    "pytorch": "PyTorch",
    "pickle": "pickle",
    "joblib": "joblib",
    "tensorflow-savedmodel": "TensorFlow SavedModel",
    "gguf": "GGUF",
    "mlflow-model": "MLflow MLmodel",
    "numpy": "numpy",
    "zip": "zip archive",
    "hdf5": "HDF5",
    "unknown": "unknown",
}


def _count(n) -> str:
    if not isinstance(n, int):
        return "?"
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _shape(shape) -> str:
    if not isinstance(shape, list):
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _io(values) -> str:
    parts = []
    for v in (values or [])[:3]:
        if isinstance(v, dict):
            parts.append(f"{v.get('name', '?')} {v.get('elem_type', v.get('type', ''))}"
                         f"{_shape(v['shape']) if v.get('shape') else ''}")  # fmt: skip
    more = len(values or []) - 3
    return ", ".join(parts) + (f" +{more}" if more > 0 else "")


def one_line(fmt: str, s: dict) -> str:
    if fmt == "safetensors" and "tensors" in s:
        dtypes = ", ".join(s.get("dtypes", {}))
        return f"{s['tensors']} tensors · {_count(s.get('parameters'))} parameters · {dtypes}"
    if fmt == "onnx" and "ir_version" in s:
        graph = s.get("graph", {})
        opsets = ", ".join(
            f"{o.get('domain') or 'ai.onnx'} {o.get('version')}" for o in s.get("opset_import", [])
        )
        return (
            f"IR {s['ir_version']}, opset {opsets} · {_io(graph.get('inputs'))} → "
            f"{_io(graph.get('outputs'))} · {_count(graph.get('parameters'))} parameters"
        )
    if fmt == "keras" and "layers" in s:
        shape = f" · input {_shape(s['input_shape'])}" if s.get("input_shape") else ""
        name = f"Keras {s.get('keras_version', '?')} {s.get('class_name', '')}"
        return f"{name} · {s['layers']} layers{shape}"
    if fmt in ("pytorch", "pickle", "joblib", "numpy", "zip") and "imports" in s:
        names = s["imports"]
        listed = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        return f"imports {len(names)} global(s): {listed}" if names else "imports nothing"
    if fmt == "tensorflow-savedmodel" and "meta_graphs" in s:
        return (
            f"TensorFlow {s.get('tensorflow_version', '?')} · tags {', '.join(s.get('tags', []))}"
            f" · signatures {', '.join(s.get('signatures', [])[:3])}"
        )
    if fmt == "gguf" and "tensors" in s:
        return (
            f"GGUF v{s.get('gguf_version')} · {s.get('architecture', '?')} · "
            f"{_count(s['tensors'])} tensors · {s.get('metadata_count')} metadata keys"
        )
    if fmt == "mlflow-model" and "flavors" in s:
        return f"flavors {', '.join(s['flavors'])}" + (
            f" · signature with {len(s['signature'].get('inputs', []))} input(s)"
            if s.get("signature")
            else ""
        )
    if fmt == "hdf5":
        return "HDF5 file (contents not read)"
    return ""


def format_label(artifact) -> str:
    """The readable name of a file's detected format ("" when it was not inspected)."""
    return LABELS.get(artifact.format, artifact.format) if artifact.format else ""


def inspection_summary(artifact) -> str:
    """One line about what inspection found in the file (tensors, inputs, layers…)."""
    return one_line(artifact.format, artifact.inspection or {})
