"""ONNX: a protobuf ModelProto, read with our own wire-format reader (the ``onnx`` package is
only a development dependency, for building test files).

Read: ir_version, opset imports, producer, graph inputs and outputs with element types and
shapes, operator counts, initializer count and parameter total. Initializer bytes are skipped
by their length; external data files are named, never opened.
"""

import math

from models_app.inspection.base import MAX_LIST, WARNING, Inspection, Malformed, Window, text
from models_app.inspection.protobuf import LEN, VARINT, Budget, Message, signed64

ELEMENT_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
}  # fmt: skip
MAX_NODES = 500_000


def inspect(window: Window, path: str, result: Inspection) -> None:
    model = Message(window, 0, window.size, Budget())
    summary = result.summary
    opsets = []
    metadata = {}
    graph = None
    for number, wire, value in model.fields():
        if number == 1 and wire == VARINT:
            summary["ir_version"] = value
        elif number == 2 and wire == LEN:
            summary["producer_name"] = text(model.string(value))
        elif number == 3 and wire == LEN:
            summary["producer_version"] = text(model.string(value))
        elif number == 4 and wire == LEN:
            summary["domain"] = text(model.string(value))
        elif number == 5 and wire == VARINT:
            summary["model_version"] = signed64(value)
        elif number == 6 and wire == LEN:
            summary["doc_string"] = text(model.string(value, 2000))
        elif number == 7 and wire == LEN:
            graph = _graph(model.sub(value), result)
        elif number == 8 and wire == LEN and len(opsets) < MAX_LIST:
            opsets.append(_opset(model.sub(value)))
        elif number == 14 and wire == LEN and len(metadata) < MAX_LIST:
            key, val = _string_pair(model.sub(value))
            metadata[text(key, 100)] = text(val)
    if "ir_version" not in summary:
        raise Malformed("no ir_version: this is not an ONNX model")
    summary["opset_import"] = opsets
    if metadata:
        summary["metadata"] = metadata
    if graph is None:
        result.add(WARNING, "The model has no graph.")
    else:
        summary["graph"] = graph
    summary["framework"] = "onnx"
    default = [o["version"] for o in opsets if o["domain"] in ("", "ai.onnx")]
    if default:
        summary["framework_version"] = f"opset {default[0]}"


def _opset(msg: Message) -> dict:
    opset = {"domain": "", "version": 0}
    for number, wire, value in msg.fields():
        if number == 1 and wire == LEN:
            opset["domain"] = text(msg.string(value), 100)
        elif number == 2 and wire == VARINT:
            opset["version"] = signed64(value)
    return opset


def _string_pair(msg: Message) -> tuple[str, str]:
    key = val = ""
    for number, wire, value in msg.fields():
        if number == 1 and wire == LEN:
            key = msg.string(value, 1000)
        elif number == 2 and wire == LEN:
            val = msg.string(value, 1000)
    return key, val


def _graph(msg: Message, result: Inspection) -> dict:
    graph = {"name": "", "nodes": 0, "initializers": 0, "parameters": 0}
    inputs, outputs, ops = [], [], {}
    initializer_names = set()
    external = set()
    for number, wire, value in msg.fields():
        if wire != LEN:
            continue
        if number == 1:
            graph["nodes"] += 1
            if graph["nodes"] <= MAX_NODES:
                op = _op_type(msg.sub(value))
                ops[op] = ops.get(op, 0) + 1
        elif number == 2:
            graph["name"] = text(msg.string(value), 200)
        elif number == 5:
            graph["initializers"] += 1
            name, count, location = _initializer(msg.sub(value))
            initializer_names.add(name)
            graph["parameters"] += count
            if location:
                external.add(location)
        elif number == 11 and len(inputs) < 10 * MAX_LIST:
            inputs.append(_value_info(msg.sub(value)))
        elif number == 12 and len(outputs) < MAX_LIST:
            outputs.append(_value_info(msg.sub(value)))
    # Before IR version 4 initializers were listed as inputs too: they are weights, not inputs.
    graph["inputs"] = [i for i in inputs if i["name"] not in initializer_names][:MAX_LIST]
    graph["outputs"] = outputs
    graph["operators"] = dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))[:40])
    for location in sorted(external)[:10]:
        level = WARNING if (location.startswith("/") or ".." in location.split("/")) else "info"
        result.add(
            level,
            f"Weights are stored in an external file {text(location, 120)!r} (not read).",
        )
    return graph


def _op_type(msg: Message) -> str:
    op, domain = "", ""
    for number, wire, value in msg.fields():
        if number == 4 and wire == LEN:
            op = msg.string(value, 200)
        elif number == 7 and wire == LEN:
            domain = msg.string(value, 200)
    return text(f"{domain}.{op}" if domain and domain != "ai.onnx" else op, 200)


def _initializer(msg: Message) -> tuple[str, int, str]:
    """(name, element count, external data location) of a TensorProto, skipping its data."""
    dims: list[int] = []
    name = location = ""
    for number, wire, value in msg.fields():
        if number == 1 and wire == VARINT:
            dims.append(signed64(value))
        elif number == 1 and wire == LEN:  # packed
            dims.extend(signed64(v) for v in msg.packed_varints(value))
        elif number == 8 and wire == LEN:
            name = msg.string(value, 1000)
        elif number == 13 and wire == LEN:
            key, val = _string_pair(msg.sub(value))
            if key == "location":
                location = val
    count = math.prod(d for d in dims if d >= 0) if dims else 1
    return name, count, location


def _value_info(msg: Message) -> dict:
    info = {"name": "", "type": "unknown"}
    for number, wire, value in msg.fields():
        if number == 1 and wire == LEN:
            info["name"] = text(msg.string(value, 1000), 200)
        elif number == 2 and wire == LEN:
            info.update(_type(msg.sub(value)))
    return info


def _type(msg: Message) -> dict:
    for number, wire, value in msg.fields():
        if wire != LEN:
            continue
        if number in (1, 8):  # tensor_type, sparse_tensor_type
            kind = "tensor" if number == 1 else "sparse_tensor"
            out = {"type": kind, "elem_type": "undefined", "shape": None}
            tensor = msg.sub(value)
            for n, w, v in tensor.fields():
                if n == 1 and w == VARINT:
                    out["elem_type"] = ELEMENT_TYPES.get(v, f"type {v}")
                elif n == 2 and w == LEN:
                    out["shape"] = _shape(tensor.sub(v))
            return out
        if number in (4, 5, 9):
            return {"type": {4: "sequence", 5: "map", 9: "optional"}[number]}
    return {"type": "unknown"}


def _shape(msg: Message) -> list:
    dims = []
    for number, wire, value in msg.fields():
        if number == 1 and wire == LEN and len(dims) < 64:
            dim = msg.sub(value)
            entry = None
            for n, w, v in dim.fields():
                if n == 1 and w == VARINT:
                    entry = signed64(v)
                elif n == 2 and w == LEN:
                    entry = text(dim.string(v, 200), 100)
            dims.append(entry)
    return dims
