"""Files on their way into a version: checked, stored before the transaction that records them
(under fresh keys, deleted again if it fails), inspected, and the metadata they fill in."""

from django.core.exceptions import ValidationError

from models_app import inspection, storage, summary
from models_app.metadata import (
    VersionMetadata,
    check_unique_paths,
    parse_requirements,
    validate_artifact_path,
)
from models_app.models import (
    Dependency,
    ModelVersion,
    RegisteredModel,
)


def prepare_files(files: list[storage.IncomingFile], existing: set[str] = frozenset()) -> None:
    errors = []
    for f in files:
        try:
            validate_artifact_path(f.path)
        except ValidationError as e:
            errors.extend(e.messages)
    try:
        check_unique_paths([f.path for f in files])
    except ValidationError as e:
        errors.extend(e.messages)
    for f in files:
        if f.path in existing:
            errors.append(f"This version already has a file at {f.path}.")
    if errors:
        raise ValidationError({"files": errors})


def store_files(model: RegisteredModel, files: list[storage.IncomingFile]) -> list[str]:
    """Write every file under a fresh key; on failure delete what was written and re-raise."""
    keys: list[str] = []
    try:
        for f in files:
            key = storage.new_storage_key(model.pk)
            keys.append(key)
            storage.store(key, f)
    except BaseException:
        storage.delete_quietly(keys)
        raise
    return keys


FILLABLE = ("framework", "framework_version", "python_version", "signature", "requirements")


def inspect_files(
    files: list[storage.IncomingFile],
    adopted: list[storage.StoredFile],
    existing: set[str] = frozenset(),
) -> dict[str, inspection.Inspection]:
    """Each incoming file from its local path; adopted ones from storage (headers only)."""
    items = [
        (
            f.path,
            lambda seconds, f=f: inspection.inspect_file(f.local_path, f.path, seconds=seconds),
        )
        for f in files
    ] + [
        (
            a.path,
            lambda seconds, a=a: inspection.inspect_stored(
                a.storage_key, a.path, a.size, seconds=seconds
            ),
        )
        for a in adopted
    ]
    results = inspection.inspect_all(items)
    inspection.add_version_context(results, [*existing, *results])
    return results


def metadata_fields(meta: VersionMetadata) -> dict:
    return {name: getattr(meta, name) for name in FILLABLE}


def version_fields(version: ModelVersion) -> dict:
    return {name: getattr(version, name) for name in FILLABLE}


def fields_from_files(current: dict, inspected: dict, files, adopted) -> dict:
    """The version fields the user left empty that the files fill: framework from any known
    format, signature/Python version/requirements from an MLmodel file."""
    local = {f.path: f.local_path for f in files}
    stored = {a.path: a.storage_key for a in adopted}

    def read_text(path: str) -> str | None:
        if path in local:
            return inspection.read_local_text(local[path])
        if path in stored:
            with storage.open_stored(stored[path]) as f:
                data = f.read(inspection.REQUIREMENTS_BYTES + 1)
            try:
                return None if len(data) > inspection.REQUIREMENTS_BYTES else data.decode()
            except UnicodeDecodeError:
                return None
        return None

    suggested = inspection.suggested_metadata(inspected, read_text)
    filled = {}
    if not current["framework"] and suggested.get("framework"):
        filled["framework"] = suggested["framework"]
        if not current["framework_version"] and suggested.get("framework_version"):
            filled["framework_version"] = suggested["framework_version"]
    if not current["python_version"] and suggested.get("python_version"):
        filled["python_version"] = suggested["python_version"]
    if current["signature"] is None and suggested.get("signature"):
        filled["signature"] = suggested["signature"]
    if not current["requirements"].strip() and suggested.get("requirements"):
        filled["requirements"] = suggested["requirements"]
    return filled


def apply_filled(version: ModelVersion, filled: dict) -> None:
    if not filled:
        return
    framework = version.framework
    for name, value in filled.items():
        setattr(version, name, value)
    version.save(update_fields=[*filled, "updated_at"])
    summary.framework_changed(version.model_id, framework, version.framework)
    if "requirements" in filled:
        version.dependencies.all().delete()
        Dependency.objects.bulk_create(
            Dependency(version=version, name=n, specifier=spec)
            for n, spec in parse_requirements(filled["requirements"])
        )


def inspection_audit(inspected: dict, filled: dict) -> dict:
    entry = {"formats": {path: result.format for path, result in sorted(inspected.items())}}
    dangerous = sorted(path for path, result in inspected.items() if result.dangerous)
    if dangerous:
        entry["dangerous_files"] = dangerous
    if filled:
        entry["filled_from_files"] = sorted(filled)
    return entry
