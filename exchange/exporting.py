"""``manage.py export_registry``: the whole registry (or some models) as one archive.

Streams: JSON records are written line by line to temporary files, artifacts are copied from
storage in chunks and re-hashed on the way (a file that no longer matches its recorded sha256
stops the export), so memory stays bounded whatever the registry's size. The archive is
written next to its destination and renamed into place only when complete.
"""

import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from exchange import records
from exchange.archive import (
    DOCUMENTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ExchangeError,
    HashingReader,
    artifact_member,
)
from exchange.history import ChainProblem, ChainSummary, ChainVerifier
from models_app import storage
from models_app.models import Dataset, RegisteredModel
from models_app.names import name_key


@dataclass
class ExportReport:
    path: str
    models: list[str] = field(default_factory=list)
    versions: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    audit_events: int = 0
    audit_head_hash: str = ""
    archive_bytes: int = 0


def resolve_models(names: list[str] | None) -> list[RegisteredModel]:
    if not names:
        return list(RegisteredModel.objects.order_by("name_key"))
    found, missing = [], []
    for name in names:
        model = RegisteredModel.objects.filter(name_key=name_key(name)).first()
        (found if model else missing).append(model or name)
    if missing:
        raise ExchangeError(f"No model named {', '.join(repr(m) for m in missing)}.")
    return sorted({m.pk: m for m in found}.values(), key=lambda m: m.name_key)


class _Writer:
    def __init__(self, tar: tarfile.TarFile, workdir: str, mtime: float):
        self.tar, self.workdir, self.mtime = tar, workdir, mtime
        self.files: list[dict] = []

    def add_stream(self, name: str, stream, size: int, kind: str) -> str:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        reader = HashingReader(stream)
        try:
            self.tar.addfile(info, reader)
        except OSError as e:
            raise ExchangeError(f"{name}: {e}") from None
        self.files.append({"name": name, "size": size, "sha256": reader.hexdigest(), "kind": kind})
        return reader.hexdigest()

    def add_jsonl(self, name: str, rows: Iterable[dict]) -> int:
        path = os.path.join(self.workdir, name)
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        with open(path, "rb") as f:
            self.add_stream(name, f, os.path.getsize(path), "document")
        os.unlink(path)
        return count

    def add_manifest(self, manifest: dict) -> None:
        """The manifest, last: it lists every member added before it."""
        raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(raw), self.mtime, 0o644
        self.tar.addfile(info, io.BytesIO(raw))


def export_registry(
    out: str, *, model_names: list[str] | None = None, progress: Callable | None = None
) -> ExportReport:
    """Write the archive to ``out``. ``progress(done_files, total_files, done_bytes)``."""
    models = resolve_models(model_names)
    scope = "models" if model_names else "full"
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise ExchangeError(f"{out_path.parent} is not a folder.")
    if out_path.is_dir():
        raise ExchangeError(f"{out_path} is a folder; name the archive file to write.")
    mode = "w:gz" if out_path.name.endswith((".gz", ".tgz")) else "w"
    partial = out_path.with_name(out_path.name + ".partial")
    report = ExportReport(path=str(out_path), models=[m.name for m in models])
    mtime = time.time()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="export-") as workdir,
            tarfile.open(partial, mode, format=tarfile.PAX_FORMAT) as tar,
        ):
            writer = _Writer(tar, workdir, mtime)
            artifacts, summary = _write_documents(writer, models, scope, report)
            _copy_artifacts(writer, artifacts, report, progress)
            writer.add_manifest(_manifest(scope, len(models), report, summary, writer.files))
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    report.archive_bytes = out_path.stat().st_size
    return report


def _write_documents(
    writer: _Writer, models: list[RegisteredModel], scope: str, report: ExportReport
) -> tuple[list[tuple[str, str, int, str, str]], ChainSummary]:
    """The six JSON-lines documents. Returns what copying each file needs (member, storage
    key, size, sha256, label; not the rows) and the summary of the verified audit events."""
    model_ids = [m.pk for m in models]
    names = records.Names()
    artifacts: list[tuple[str, str, int, str, str]] = []

    def member_of(artifact) -> str:
        name = artifact_member(len(artifacts) + 1)
        version = artifact.version
        label = f"{artifact.path} of {version.model.name} v{version.number}"
        artifacts.append((name, artifact.storage_key, artifact.size, artifact.sha256, label))
        return name

    writer.add_jsonl(
        "models.jsonl",
        (records.model_record(m, names) for m in records.models_for_export()
         .filter(pk__in=model_ids).iterator(chunk_size=100)),
    )  # fmt: skip
    report.versions = writer.add_jsonl(
        "versions.jsonl",
        (
            records.version_record(v, names, member_of)
            for m in models
            for v in records.versions_for_export(m).iterator(chunk_size=200)
        ),
    )
    datasets = Dataset.objects.select_related("created_by", "team").order_by("name")
    if scope == "models":
        datasets = datasets.filter(version_links__version__model__in=model_ids).distinct()
    writer.add_jsonl("datasets.jsonl", (records.dataset_record(d, names) for d in datasets))
    events = records.audit_events(None if scope == "full" else model_ids)
    verifier = ChainVerifier(scope)
    try:
        report.audit_events = writer.add_jsonl(
            "audit.jsonl",
            (_checked(verifier, records.audit_record(e))
             for e in events.iterator(chunk_size=2000)),
        )  # fmt: skip
    except ChainProblem as e:
        raise ExchangeError(
            f"This registry's audit chain does not verify ({e}); run verify_audit."
        ) from None
    summary = verifier.summary
    report.audit_head_hash = summary.head_hash
    User = get_user_model()
    writer.add_jsonl(
        "users.jsonl",
        (records.user_record(u) for u in User.objects.filter(
            username__in=sorted(names.users)).order_by("username")),
    )  # fmt: skip
    writer.add_jsonl(
        "groups.jsonl",
        ({"name": g} for g in Group.objects.filter(name__in=sorted(names.groups))
         .order_by("name").values_list("name", flat=True)),
    )  # fmt: skip
    return artifacts, summary


def _copy_artifacts(
    writer: _Writer, artifacts: list, report: ExportReport, progress: Callable | None
) -> None:
    """Every file from storage into the archive, re-hashed on the way."""
    done_bytes = 0
    total = len(artifacts)
    for i, (member, key, size, sha256, label) in enumerate(artifacts, start=1):
        try:
            with storage.open_stored(key) as stream:
                sha = writer.add_stream(member, stream, size, "artifact")
        except ExchangeError as e:
            raise ExchangeError(f"Cannot read {label} from storage ({e}).") from None
        except Exception as e:  # noqa: BLE001 (a storage error names the file)
            raise ExchangeError(f"Cannot read {label} from storage ({type(e).__name__}).") from None
        if sha != sha256:
            raise ExchangeError(
                f"{label} no longer matches its recorded sha256 (storage changed?); "
                "nothing was exported. Run verify_artifacts."
            )
        done_bytes += size
        report.artifacts += 1
        report.artifact_bytes += size
        if progress is not None:
            progress(i, total, done_bytes)


def _manifest(
    scope: str, model_count: int, report: ExportReport, summary: ChainSummary, files: list
) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "scope": scope,
        "models": report.models,
        "counts": {
            "models": model_count,
            "versions": report.versions,
            "artifacts": report.artifacts,
            "audit_events": report.audit_events,
        },
        "audit": {
            "events": summary.events,
            "first_seq": summary.first_seq,
            "last_seq": summary.last_seq,
            "head_hash": summary.head_hash,
        },
        "documents": {name: f"{name}.jsonl" for name in DOCUMENTS},
        "files": files,
    }


def _checked(verifier: ChainVerifier, record: dict) -> dict:
    verifier.feed(record)
    return record
