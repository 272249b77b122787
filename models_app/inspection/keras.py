"""Keras v3 ``.keras`` files: a zip with ``config.json``, ``metadata.json`` and the weights.

Read: the Keras version, the model class, the layer count and input shape. A Lambda layer
carries Python bytecode that runs when the model is loaded with ``safe_mode=False``; classes
from modules other than Keras import that module's code when loaded. Both are findings.
"""

import json

from models_app.inspection import pickles, zipsafe
from models_app.inspection.base import (
    DANGER,
    WARNING,
    Inspection,
    LimitReached,
    Malformed,
    Window,
    text,
)

MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_NODES = 200_000


def _json(archive, info, what: str):
    raw = zipsafe.read_entry(archive, info, MAX_CONFIG_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise Malformed(f"{what} nests too deeply") from None
    except ValueError as e:
        raise Malformed(f"{what} is not valid JSON ({text(e, 120)})") from None


def inspect(f, window: Window, path: str, result: Inspection) -> None:
    head = window.read(0, min(4, window.size), "the first bytes")
    if not zipsafe.is_zip(head):
        raise Malformed("not a zip: Keras v3 files are zips (older .h5 files are not read)")
    archive = zipsafe.open_zip(f, window, result)
    infos = {i.filename: i for i in archive.infolist()}
    if "config.json" not in infos:
        raise Malformed("no config.json: not a Keras v3 file")
    summary = result.summary
    summary["framework"] = "keras"
    if "metadata.json" in infos:
        metadata = _json(archive, infos["metadata.json"], "metadata.json")
        if isinstance(metadata, dict):
            if metadata.get("keras_version"):
                summary["keras_version"] = text(metadata["keras_version"], 40)
                summary["framework_version"] = summary["keras_version"]
            if metadata.get("date_saved"):
                summary["date_saved"] = text(metadata["date_saved"], 40)
    config = _json(archive, infos["config.json"], "config.json")
    if not isinstance(config, dict):
        raise Malformed("config.json is not an object")
    summary["class_name"] = text(config.get("class_name", ""), 100)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = inner.get("layers") if isinstance(inner.get("layers"), list) else []
    summary["layers"] = len(layers)
    summary["layer_types"] = _layer_types(layers)
    shape = _input_shape(config, layers)
    if shape is not None:
        summary["input_shape"] = shape
    summary["weights"] = sorted(name for name in infos if name.startswith("model.weights"))[:5]
    _walk(config, result, window)
    # Entries the Keras loader does not read, but whose pickles a custom loader could.
    pickles.scan_archive(archive, result, window.deadline)


def _layer_types(layers: list) -> dict:
    counts: dict[str, int] = {}
    for layer in layers[:10_000]:
        if isinstance(layer, dict):
            name = text(layer.get("class_name", "?"), 60)
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30])


def _input_shape(config: dict, layers: list):
    build = config.get("build_config")
    if isinstance(build, dict) and isinstance(build.get("input_shape"), list):
        return build["input_shape"][:16]
    for layer in layers[:1]:
        cfg = layer.get("config") if isinstance(layer, dict) else None
        if isinstance(cfg, dict):
            for key in ("batch_shape", "batch_input_shape"):
                if isinstance(cfg.get(key), list):
                    return cfg[key][:16]
    return None


def _walk(config, result: Inspection, window: Window) -> None:
    """Every object of the config, iteratively and with a node cap: Lambda layers and classes
    from outside Keras."""
    seen = 0
    lambdas = 0
    modules: set[str] = set()
    todo = [config]
    while todo:
        node = todo.pop()
        seen += 1
        if seen > MAX_NODES:
            raise LimitReached(f"config.json has more than {MAX_NODES:,} values")
        if seen % 10_000 == 0:
            window.deadline.check()
        if isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, dict):
            class_name = node.get("class_name")
            if class_name in ("Lambda", "__lambda__") or (
                class_name == "function"
                and isinstance(node.get("config"), dict)
                and "code" in node["config"]
            ):
                lambdas += 1
            module = node.get("module")
            if (
                isinstance(module, str)
                and isinstance(class_name, str)
                and module
                and not module.startswith(("keras", "builtins"))
            ):
                modules.add(module)
            todo.extend(node.values())
    if lambdas:
        result.add(
            DANGER,
            f"{lambdas} Lambda layer(s) or serialized function(s): Python bytecode that runs when "
            "the model is loaded with safe_mode=False.",
        )
    for module in sorted(modules)[:10]:
        result.add(
            WARNING,
            f"Uses classes of the module {text(module, 100)!r}: loading imports that module.",
        )
