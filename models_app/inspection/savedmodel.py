"""TensorFlow SavedModel: a folder with ``saved_model.pb`` (detected from the version's file
paths) and usually ``variables/``. The protobuf is read with our own reader: tags, TensorFlow
version, signature names, and the operators that touch files or run Python."""

from models_app.inspection.base import MAX_LIST, WARNING, Inspection, Window, text
from models_app.inspection.protobuf import LEN, VARINT, Budget, Message

RISKY_OPS = {
    "ReadFile": "reads files", "WriteFile": "writes files", "MatchingFiles": "lists files",
    "PyFunc": "calls Python", "PyFuncStateless": "calls Python", "EagerPyFunc": "calls Python",
    "Save": "writes files", "SaveV2": "writes files", "ImmutableConst": "maps a file",
}  # fmt: skip
MAX_OPS_WALKED = 500_000


def inspect(window: Window, path: str, result: Inspection) -> None:
    saved = Message(window, 0, window.size, Budget())
    summary = result.summary
    summary.update({"meta_graphs": 0, "tags": [], "signatures": [], "framework": "tensorflow"})
    ops: dict[str, int] = {}
    for number, wire, value in saved.fields():
        if number == 1 and wire == VARINT:
            summary["schema_version"] = value
        elif number == 2 and wire == LEN:
            summary["meta_graphs"] += 1
            _meta_graph(saved.sub(value), summary, ops)
    risky = {op: RISKY_OPS[op] for op in ops if op in RISKY_OPS}
    for op, what in sorted(risky.items()):
        result.add(WARNING, f"The graph uses {op} ({what}) when it runs.")
    summary["operators"] = len(ops)


def _meta_graph(msg: Message, summary: dict, ops: dict) -> None:
    for number, wire, value in msg.fields():
        if wire != LEN:
            continue
        if number == 1:  # MetaInfoDef
            info = msg.sub(value)
            for n, w, v in info.fields():
                if n == 4 and w == LEN and len(summary["tags"]) < 20:
                    summary["tags"].append(text(info.string(v, 200), 100))
                elif n == 5 and w == LEN:
                    summary["tensorflow_version"] = text(info.string(v, 100), 40)
                    summary["framework_version"] = summary["tensorflow_version"]
        elif number == 2:  # GraphDef
            _graph_ops(msg.sub(value), ops)
        elif number == 5 and len(summary["signatures"]) < MAX_LIST:  # signature_def map entry
            entry = msg.sub(value)
            for n, w, v in entry.fields():
                if n == 1 and w == LEN:
                    summary["signatures"].append(text(entry.string(v, 200), 100))


def _graph_ops(graph: Message, ops: dict) -> None:
    for number, wire, value in graph.fields():
        if wire != LEN:
            continue
        if number == 1:  # NodeDef
            _node_op(graph.sub(value), ops)
        elif number == 2:  # FunctionDefLibrary
            library = graph.sub(value)
            for n, w, v in library.fields():
                if n == 1 and w == LEN:  # FunctionDef
                    function = library.sub(v)
                    for fn, fw, fv in function.fields():
                        if fn == 3 and fw == LEN:  # node_def
                            _node_op(function.sub(fv), ops)


def _node_op(node: Message, ops: dict) -> None:
    if len(ops) > MAX_OPS_WALKED:
        return
    for number, wire, value in node.fields():
        if number == 2 and wire == LEN:
            op = node.string(value, 200)
            ops[op] = ops.get(op, 0) + 1
            return
