"""Validating what a client says about a version: metadata dicts (from JSON/YAML, the API or
the web form), requirements text, metrics files and artifact paths.

Everything here is pure: it raises ``ValidationError`` with messages keyed by the field (and
row: ``metrics[2].value``) and touches neither the database nor storage, so nothing is saved
until all of it is valid.
"""

import csv
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from core import jsonbody
from models_app.models import VersionDataset, VersionParent

MAX_PATH_LENGTH = 255
MAX_ROWS = 1000  # metrics, params, tags, dependencies: a version is not a data lake
# Each dataset and parent is a lookup and a link written in the version's transaction (and a
# new dataset a registry-wide record): a version names a few, never thousands.
MAX_DATASETS = 50
MAX_PARENTS = 20


@dataclass(frozen=True)
class MetricIn:
    name: str
    value: float
    split: str = ""
    step: int | None = None  # the training step it was logged at (from a run), if known


@dataclass(frozen=True)
class DatasetIn:
    name: str
    role: str = VersionDataset.Role.TRAIN
    uri: str = ""
    digest: str = ""
    row_count: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ParentIn:
    model: str
    version: int
    relation: str = VersionParent.Relation.RETRAINED


@dataclass
class VersionMetadata:
    description: str = ""
    framework: str = ""
    framework_version: str = ""
    python_version: str = ""
    requirements: str = ""
    signature: dict | None = None
    source_run: str = ""
    source_repository: str = ""
    source_commit: str = ""
    metrics: list[MetricIn] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetIn] = field(default_factory=list)
    parents: list[ParentIn] = field(default_factory=list)

    def dependencies(self) -> list[tuple[str, str]]:
        return parse_requirements(self.requirements)


class Errors:
    """Collects messages per field so the user sees every problem at once."""

    def __init__(self):
        self.by_field: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.by_field.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


# ---------------------------------------------------------------------------------------------
# Scalars


def parse_metric_value(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValidationError("must be a number, not true/false")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValidationError(f"must be a number, got {raw[:40]!r}") from None
    else:
        raise ValidationError(f"must be a number, got {type(raw).__name__}")
    if not math.isfinite(value):
        raise ValidationError("must be a finite number (NaN and infinity are not allowed)")
    return value


def _text(raw: Any, errors: Errors, name: str, *, max_length: int, required=False) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        else:
            errors.add(name, f"must be text, got {type(raw).__name__}")
            return ""
    value = raw.strip()
    if "\x00" in value:
        errors.add(name, "must not contain NUL characters")
        return ""
    if required and not value:
        errors.add(name, "is required")
    if len(value) > max_length:
        errors.add(name, f"is at most {max_length} characters (got {len(value)})")
    return value


def _key_value_rows(
    raw: Any, errors: Errors, name: str, *, max_value: int = 6000
) -> dict[str, str]:
    """Accepts {"k": "v"} or [{"key": k, "value": v}]; values become text."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for i, row in enumerate(raw):
            if not isinstance(row, dict) or "key" not in row:
                errors.add(f"{name}[{i}]", 'must be {"key": …, "value": …}')
                continue
            items.append((row["key"], row.get("value", "")))
    else:
        errors.add(name, "must be an object of key: value pairs")
        return {}
    if len(items) > MAX_ROWS:
        errors.add(name, f"at most {MAX_ROWS} entries")
        return {}
    result: dict[str, str] = {}
    for key, value in items:
        key_text = _text(key, errors, f"{name}.{key}", max_length=250, required=True)
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        value_text = _text(value, errors, f"{name}.{key}", max_length=max_value)
        if key_text in result:
            errors.add(f"{name}.{key}", "appears twice")
        if key_text:
            result[key_text] = value_text
    return result


# ---------------------------------------------------------------------------------------------
# Metrics


def parse_metrics(raw: Any, errors: Errors, name: str = "metrics") -> list[MetricIn]:
    """Accepts {"accuracy": 0.9} or [{"name": "accuracy", "value": 0.9, "split": "test"}]
    (each row may also give the ``step`` it was logged at)."""
    if raw in (None, ""):
        return []
    if isinstance(raw, dict):
        rows = [{"name": k, "value": v} for k, v in raw.items()]
    elif isinstance(raw, list):
        rows = raw
    else:
        errors.add(name, "must be a list of {name, value, split} or an object name: value")
        return []
    if len(rows) > MAX_ROWS:
        errors.add(name, f"at most {MAX_ROWS} metrics")
        return []
    metrics: list[MetricIn] = []
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, dict):
            errors.add(where, "must be an object with name and value")
            continue
        metric_name = _text(row.get("name"), errors, f"{where}.name", max_length=250, required=True)
        split = _text(row.get("split", ""), errors, f"{where}.split", max_length=100)
        try:
            value = parse_metric_value(row.get("value"))
        except ValidationError as e:
            errors.add(f"{where}.value", f"{metric_name or 'value'} {e.messages[0]}")
            continue
        step = row.get("step")
        if isinstance(step, str):  # from a CSV file or a form
            step = step.strip()
            step = None if step == "" else int(step) if re.fullmatch(r"-?\d{1,19}", step) else step
        if step is not None and (
            isinstance(step, bool) or not isinstance(step, int) or abs(step) >= 2**63
        ):
            errors.add(f"{where}.step", "must be a whole number (the training step)")
            continue
        if (metric_name, split) in seen:
            errors.add(where, f"{metric_name} ({split or 'no split'}) appears twice")
            continue
        seen.add((metric_name, split))
        if metric_name:
            metrics.append(MetricIn(metric_name, value, split, step))
    return metrics


def parse_metrics_file(content: bytes, filename: str = "") -> list[MetricIn]:
    """A metrics file as pipelines write them: JSON (object or list) or CSV with a header
    ``name,value[,split]``. Raises ValidationError saying where it fails to parse."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The metrics file is not UTF-8 text.") from None
    errors = Errors()
    stripped = text.lstrip()
    if filename.lower().endswith(".json") or stripped.startswith(("{", "[")):
        try:
            data = jsonbody.loads(text, parse_constant=_refuse_constant)
        except ValueError as e:
            raise ValidationError(f"The metrics file is not valid JSON: {e}") from None
        metrics = parse_metrics(data, errors, "metrics_file")
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "name" not in header or "value" not in header:
            raise ValidationError(
                "The metrics CSV needs a header row with at least 'name' and 'value' columns."
            )
        rows = []
        for row in reader:
            rows.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()})
        metrics = parse_metrics(rows, errors, "metrics_file")
    if errors.by_field:
        raise ValidationError(
            [f"{where}: {msg}" for where, msgs in errors.by_field.items() for msg in msgs]
        )
    return metrics


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


# ---------------------------------------------------------------------------------------------
# Requirements

_REQ_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def canonical_package_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text: str) -> list[tuple[str, str]]:
    """requirements.txt → [(canonical name, specifier)]. Options (-r, -e, --index-url) and
    comments are ignored; environment markers are kept with the specifier."""
    rows: dict[str, str] = {}
    errors = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _REQ_NAME.match(line)
        if not match:
            errors.append(f"line {number}: cannot read {line[:60]!r}")
            continue
        name = canonical_package_name(match.group(1))
        if len(name) > 200:
            errors.append(f"line {number}: package names are at most 200 characters")
            continue
        specifier = (match.group(2) or "") + match.group(3).strip()
        if name in rows:
            errors.append(f"line {number}: {name} is listed twice")
            continue
        rows[name] = specifier[:500]
    if errors:
        raise ValidationError(errors)
    return sorted(rows.items())


# ---------------------------------------------------------------------------------------------
# Artifact paths


def validate_artifact_path(path: Any) -> str:
    """A file's path inside a version: relative, forward slashes, no '..', no surprises."""
    if not isinstance(path, str):
        raise ValidationError("A file path must be text.")
    if "\x00" in path:
        raise ValidationError("A file path must not contain NUL characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in path):
        raise ValidationError("A file path must not contain control characters.")
    if not path.strip():
        raise ValidationError("A file path is required.")
    if "\\" in path:
        raise ValidationError(f"Use forward slashes in file paths ({path[:80]!r}).")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ValidationError(f"File paths must be relative ({path[:80]!r}).")
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError(
            f"File paths are at most {MAX_PATH_LENGTH} characters (got {len(path)})."
        )
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValidationError(f"File paths must not contain empty, '.' or '..' parts ({path!r}).")
    if any(part != part.strip() for part in parts):
        raise ValidationError(f"File path parts must not start or end with spaces ({path!r}).")
    return path


def check_unique_paths(paths: list[str]) -> None:
    seen = set()
    for p in paths:
        if p in seen:
            raise ValidationError(f"Two files have the same path: {p}")
        seen.add(p)


# ---------------------------------------------------------------------------------------------
# The whole metadata document

KNOWN_FIELDS = {
    "description", "framework", "framework_version", "python_version", "requirements",
    "dependencies", "signature", "source", "source_run", "source_repository", "source_commit",
    "metrics", "params", "parameters", "tags", "datasets", "parents",
}  # fmt: skip


def parse_metadata(data: Any) -> VersionMetadata:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"metadata": ["must be an object (a mapping of fields)"]})
    errors = Errors()
    unknown = sorted(set(data) - KNOWN_FIELDS)
    if unknown:
        errors.add("metadata", f"unknown fields: {', '.join(map(str, unknown))}")

    meta = VersionMetadata()
    meta.description = _text(data.get("description"), errors, "description", max_length=20000)
    meta.framework = _text(data.get("framework"), errors, "framework", max_length=100)
    meta.framework_version = _text(
        data.get("framework_version"), errors, "framework_version", max_length=50
    )
    meta.python_version = _text(data.get("python_version"), errors, "python_version", max_length=20)

    requirements = data.get("requirements", data.get("dependencies", ""))
    if isinstance(requirements, list):
        requirements = "\n".join(str(r) for r in requirements)
    meta.requirements = _text(requirements, errors, "requirements", max_length=100000)
    try:
        parse_requirements(meta.requirements)
    except ValidationError as e:
        for msg in e.messages:
            errors.add("requirements", msg)

    signature = data.get("signature")
    if signature is not None and not isinstance(signature, dict):
        errors.add("signature", "must be a JSON object")
    elif signature is not None and len(json.dumps(signature)) > 200000:
        errors.add("signature", "is too large (at most 200 kB of JSON)")
    else:
        meta.signature = signature

    source = data.get("source") or {}
    if not isinstance(source, dict):
        errors.add("source", "must be an object with run, repository, commit")
        source = {}
    meta.source_run = _text(
        source.get("run", data.get("source_run")), errors, "source_run", max_length=500
    )
    meta.source_repository = _text(
        source.get("repository", data.get("source_repository")),
        errors,
        "source_repository",
        max_length=500,
    )
    meta.source_commit = _text(
        source.get("commit", data.get("source_commit")), errors, "source_commit", max_length=64
    )

    meta.metrics = parse_metrics(data.get("metrics"), errors)
    meta.params = _key_value_rows(data.get("params", data.get("parameters")), errors, "params")
    meta.tags = _key_value_rows(data.get("tags"), errors, "tags", max_value=5000)
    meta.datasets = _parse_datasets(data.get("datasets"), errors)
    meta.parents = _parse_parents(data.get("parents"), errors)
    errors.raise_if_any()
    return meta


def _parse_datasets(raw: Any, errors: Errors) -> list[DatasetIn]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        errors.add("datasets", "must be a list of {name, role, uri, digest, rows}")
        return []
    if len(raw) > MAX_DATASETS:
        errors.add("datasets", f"at most {MAX_DATASETS} datasets (got {len(raw)})")
        return []
    result = []
    seen = set()
    for i, row in enumerate(raw):
        where = f"datasets[{i}]"
        if isinstance(row, str):
            row = {"name": row}
        if not isinstance(row, dict):
            errors.add(where, "must be an object with at least a name")
            continue
        name = _text(row.get("name"), errors, f"{where}.name", max_length=200, required=True)
        role = row.get("role", VersionDataset.Role.TRAIN)
        if role not in VersionDataset.Role.values:
            errors.add(f"{where}.role", f"must be one of {', '.join(VersionDataset.Role.values)}")
            continue
        rows = row.get("rows", row.get("row_count"))
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            errors.add(f"{where}.rows", "must be a whole number ≥ 0")
            rows = None
        if (name, role) in seen:
            errors.add(where, f"{name} as {role} appears twice")
            continue
        seen.add((name, role))
        if name:
            result.append(
                DatasetIn(
                    name=name,
                    role=role,
                    uri=_text(row.get("uri"), errors, f"{where}.uri", max_length=1000),
                    digest=_text(row.get("digest"), errors, f"{where}.digest", max_length=200),
                    row_count=rows,
                    description=_text(
                        row.get("description"), errors, f"{where}.description", max_length=5000
                    ),
                )
            )
    return result


def _parse_parents(raw: Any, errors: Errors) -> list[ParentIn]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        errors.add("parents", "must be a list of {model, version, relation}")
        return []
    if len(raw) > MAX_PARENTS:
        errors.add("parents", f"at most {MAX_PARENTS} parent versions (got {len(raw)})")
        return []
    result = []
    for i, row in enumerate(raw):
        where = f"parents[{i}]"
        if not isinstance(row, dict):
            errors.add(where, "must be an object with model and version")
            continue
        model = _text(row.get("model"), errors, f"{where}.model", max_length=100, required=True)
        number = row.get("version")
        if isinstance(number, str) and number.isdigit():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            errors.add(f"{where}.version", "must be a version number ≥ 1")
            continue
        relation = row.get("relation", VersionParent.Relation.RETRAINED)
        if relation not in VersionParent.Relation.values:
            errors.add(
                f"{where}.relation", f"must be one of {', '.join(VersionParent.Relation.values)}"
            )
            continue
        if model:
            result.append(ParentIn(model=model, version=number, relation=relation))
    return result
