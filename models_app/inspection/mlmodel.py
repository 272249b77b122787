"""MLflow ``MLmodel`` files: YAML, read with ``yaml.safe_load`` only (tags such as
``!!python/object/apply`` are refused by the safe loader, never constructed).

Read: flavors, the loader module, Python version, signature, and the environment files the
model refers to, so a version registered without metadata can be filled from them.
"""

import json

import yaml

from models_app.inspection.base import (
    INFO,
    WARNING,
    Inspection,
    LimitReached,
    Malformed,
    Window,
    text,
)

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000  # after alias expansion: a "billion laughs" document stops here
FLAVOR_FRAMEWORKS = {
    "sklearn": "scikit-learn", "pytorch": "pytorch", "tensorflow": "tensorflow",
    "keras": "keras", "xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost",
    "onnx": "onnx", "transformers": "transformers", "statsmodels": "statsmodels",
    "spark": "spark-ml", "sentence_transformers": "sentence-transformers", "prophet": "prophet",
    "spacy": "spacy", "h2o": "h2o", "paddle": "paddlepaddle", "pmdarima": "pmdarima",
}  # fmt: skip
PICKLE_FORMATS = {"pickle", "cloudpickle"}


def _count_nodes(value) -> None:
    seen = 0
    todo = [value]
    while todo:
        node = todo.pop()
        seen += 1
        if seen > MAX_NODES:
            raise LimitReached(f"the YAML expands to more than {MAX_NODES:,} values")
        if isinstance(node, dict):
            todo.extend(node.keys())
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)


def inspect(window: Window, path: str, result: Inspection) -> None:
    if window.size > MAX_BYTES:
        raise LimitReached(f"{window.size:,} bytes; MLmodel files over {MAX_BYTES:,} are refused")
    raw = window.read(0, window.size, "the file")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed("not UTF-8 text") from None
    except RecursionError:
        raise Malformed("the YAML nests too deeply") from None
    except yaml.YAMLError as e:
        raise Malformed(f"not valid safe YAML ({text(e, 200)})") from None
    _count_nodes(data)
    if not isinstance(data, dict):
        raise Malformed("not a mapping of fields")
    summary = result.summary
    for key in ("artifact_path", "mlflow_version", "model_uuid", "run_id", "utc_time_created"):
        if isinstance(data.get(key), str | int | float):
            summary[key] = text(data[key], 100)
    flavors = data.get("flavors") if isinstance(data.get("flavors"), dict) else {}
    summary["flavors"] = [text(f, 60) for f in list(flavors)[:20]]
    pyfunc = flavors.get("python_function")
    pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
    if isinstance(pyfunc.get("loader_module"), str):
        summary["loader_module"] = text(pyfunc["loader_module"], 100)
    if isinstance(pyfunc.get("python_version"), str | int | float):
        summary["python_version"] = text(pyfunc["python_version"], 20)
    _framework(flavors, summary, result)
    summary["requirements_files"] = _environment_files(pyfunc)
    signature = data.get("signature")
    if isinstance(signature, dict):
        parsed = _signature(signature, result)
        if parsed:
            summary["signature"] = parsed


def _framework(flavors: dict, summary: dict, result: Inspection) -> None:
    for name, flavor in flavors.items():
        if name == "python_function" or not isinstance(flavor, dict):
            continue
        summary["framework"] = FLAVOR_FRAMEWORKS.get(name, text(name, 60))
        for key, value in flavor.items():
            if (
                isinstance(key, str)
                and key.endswith("_version")
                and key != "mlflow_version"
                and isinstance(value, str | int | float)
            ):
                summary["framework_version"] = text(value, 40)
                break
        fmt = flavor.get("serialization_format")
        if fmt in PICKLE_FORMATS or str(flavor.get("pickled_model", "")).endswith(".pkl"):
            model_file = flavor.get("pickled_model") or flavor.get("model_path") or "the model"
            result.add(
                INFO,
                f"The {name} flavor loads {text(model_file, 100)} with {fmt or 'pickle'}: it "
                "executes code when loaded.",
            )
        break
    if "framework" not in summary and "python_function" in flavors:
        summary["framework"] = "mlflow-pyfunc"


def _environment_files(pyfunc: dict) -> list[str]:
    """The environment files the model names, relative to its folder; requirements.txt is
    where MLflow writes the pip requirements that python_env.yaml and conda.yaml refer to."""
    env = pyfunc.get("env")
    files = []
    if isinstance(env, str):
        files.append(env)
    elif isinstance(env, dict):
        files.extend(v for v in env.values() if isinstance(v, str))
    files = [text(f, 200) for f in files[:5]]
    return ["requirements.txt", *[f for f in files if f != "requirements.txt"]]


def _signature(signature: dict, result: Inspection) -> dict:
    """MLflow keeps each part of the signature as a JSON string."""
    parsed = {}
    for part in ("inputs", "outputs", "params"):
        value = signature.get(part)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                result.add(WARNING, f"The signature's {part} are not valid JSON; ignored.")
                continue
        if isinstance(value, list):
            parsed[part] = value[:500]
    return parsed
