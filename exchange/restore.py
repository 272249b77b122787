"""``manage.py import_registry``: restore an export archive into this registry.

All or nothing. Every member is checked against the manifest's sha256 and the exported audit
history is re-verified before anything is written; the artifacts are then stored under fresh
keys and every row is created in one transaction, with one ``registry.imported`` audit event.
On any failure the stored files are removed again and the message names what failed.

Users are matched by username; missing ones are created without a password (an administrator
sets one) and never as staff or superusers. Teams are matched by name, datasets by name (a
dataset registered here with another digest is a conflict), models by name (``on_conflict``:
"fail" refuses the import, "skip" keeps the existing model and imports the others).
"""

import json
import math
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals import audit
from approvals.models import Alias, AliasAssignment, Comment, MetricGate, Review, ReviewPolicy
from exchange.archive import (
    DOCUMENTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    ExchangeError,
    copy_hashing,
    file_sha256,
)
from exchange.history import ChainProblem, ChainVerifier
from exchange.models import ImportedAuditEvent, RegistryImport
from exchange.records import AUDIT_FIELDS, CARD_FIELDS
from models_app import inspection, storage
from models_app.access import Role
from models_app.metadata import validate_artifact_path
from models_app.models import (
    Artifact,
    CardSection,
    CardTemplate,
    Dataset,
    Dependency,
    Metric,
    MetricSpec,
    ModelCard,
    ModelTag,
    ModelVersion,
    Param,
    RegisteredModel,
    VersionDataset,
    VersionParent,
    VersionTag,
)
from models_app.names import name_key, validate_model_name

AUDIT_BATCH = 2000


@dataclass
class ImportReport:
    archive_sha256: str
    models: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    versions: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    audit_events: int = 0
    audit_head_hash: str = ""
    users_created: list[str] = field(default_factory=list)
    batch_id: int | None = None


# ---------------------------------------------------------------------------------------------
# Reading records defensively: an archive is input like any other.


class Record:
    def __init__(self, data, where: str):
        if not isinstance(data, dict):
            raise ExchangeError(f"{where} is not an object.")
        self.data, self.where = data, where

    def _fail(self, key: str, what: str):
        raise ExchangeError(f"{self.where}: {key} {what}.")

    def get(self, key: str, kind, *, optional: bool = False, max_length: int | None = None):
        value = self.data.get(key)
        if value is None and optional:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self._fail(key, f"is missing or not {getattr(kind, '__name__', kind)}")
        if isinstance(value, str):
            if "\x00" in value:
                self._fail(key, "contains a NUL character")
            if max_length is not None and len(value) > max_length:
                self._fail(key, f"is longer than {max_length} characters")
        return value

    def text(self, key: str, max_length: int | None = None, *, optional: bool = False) -> str:
        value = self.get(key, str, optional=optional, max_length=max_length)
        return "" if value is None else value

    def when(self, key: str, *, optional: bool = False) -> datetime | None:
        value = self.get(key, str, optional=optional)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self._fail(key, f"is not a date and time ({value[:40]!r})")
        if parsed.tzinfo is None:
            self._fail(key, "has no time zone")
        return parsed

    def choice(self, key: str, choices) -> str:
        value = self.text(key)
        if value not in choices:
            self._fail(key, f"must be one of {', '.join(choices)} (got {value[:40]!r})")
        return value

    def count(self, key: str, *, optional: bool = False) -> int | None:
        value = self.get(key, int, optional=optional)
        if value is not None and value < 0:
            self._fail(key, "must not be negative")
        return value

    def items(self, key: str) -> list:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            self._fail(key, "must be a list")
        return value

    def mapping(self, key: str) -> dict:
        value = self.data.get(key) or {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self._fail(key, "must map text to text")
        return value


def _jsonl(path: str, name: str) -> Iterator[Record]:
    with open(path, "rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(line) > MAX_LINE_BYTES:
                raise ExchangeError(
                    f"{name} line {number} is longer than {MAX_LINE_BYTES:,} bytes."
                )
            try:
                data = json.loads(line)
            except (ValueError, RecursionError):
                raise ExchangeError(f"{name} line {number} is not valid JSON.") from None
            yield Record(data, f"{name} line {number}")


# ---------------------------------------------------------------------------------------------
# The archive


def _manifest(tar: tarfile.TarFile) -> dict:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise ExchangeError(
            "The archive has no manifest.json: it is not a registry export."
        ) from None
    if not member.isreg() or member.size > MAX_MANIFEST_BYTES:
        raise ExchangeError("The archive's manifest.json is not a regular file of sensible size.")
    try:
        manifest = json.loads(tar.extractfile(member).read())
    except (ValueError, RecursionError):
        raise ExchangeError("The archive's manifest.json is not valid JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExchangeError("The archive's manifest does not describe a registry export.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ExchangeError(
            f"The archive has format version {manifest.get('format_version')!r}; this registry "
            f"reads version {FORMAT_VERSION}."
        )
    if manifest.get("scope") not in ("full", "models"):
        raise ExchangeError("The manifest's scope must be 'full' or 'models'.")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise ExchangeError("The manifest lists no files.")
    names = set()
    for i, entry in enumerate(files):
        r = Record(entry, f"manifest file {i + 1}")
        name = r.text("name", 200)
        r.count("size")
        r.text("sha256", 64)
        r.choice("kind", ["document", "artifact"])
        if name in names or name == MANIFEST:
            raise ExchangeError(f"The manifest lists {name} twice.")
        names.add(name)
    for doc in DOCUMENTS:
        if f"{doc}.jsonl" not in names:
            raise ExchangeError(f"The archive has no {doc}.jsonl.")
    extra = sorted(m.name for m in tar.getmembers() if m.name not in names | {MANIFEST})
    if extra:
        raise ExchangeError(f"The archive holds {extra[0]!r}, which its manifest does not list.")
    return manifest


class _Extracted:
    """Members copied out of the archive under our own names, each checked on the way."""

    def __init__(self, tar: tarfile.TarFile, manifest: dict, workdir: str, progress):
        self.tar, self.workdir, self.progress = tar, workdir, progress
        self.entries = {e["name"]: e for e in manifest["files"]}
        self.paths: dict[str, str] = {}

    def extract(self, name: str, label: str) -> str:
        entry = self.entries.get(name)
        if entry is None:
            raise ExchangeError(f"{label}: the archive's manifest does not list {name}.")
        member = self.tar.getmember(name)
        if not member.isreg():
            raise ExchangeError(f"{label}: {name} is not a regular file in the archive.")
        what = label if label == name else f"{label} ({name})"
        damaged = "The archive is damaged or was changed. Nothing was imported."
        if member.size != entry["size"]:
            raise ExchangeError(
                f"{what} does not match the manifest: {member.size:,} bytes, the manifest says "
                f"{entry['size']:,}. {damaged}"
            )
        local = os.path.join(self.workdir, f"{len(self.paths) + 1:08d}")
        with self.tar.extractfile(member) as source, open(local, "wb") as target:
            size, sha = copy_hashing(source, target)
        if size != entry["size"] or sha != entry["sha256"]:
            raise ExchangeError(f"{what} does not match its sha256 in the manifest. {damaged}")
        self.paths[name] = local
        if self.progress is not None:
            self.progress(len(self.paths), len(self.entries))
        return local


# ---------------------------------------------------------------------------------------------
# The import


def import_registry(
    path: str,
    *,
    on_conflict: str = "fail",
    actor=None,
    progress: Callable | None = None,
) -> ImportReport:
    if on_conflict not in ("fail", "skip"):
        raise ExchangeError("--on-conflict is 'fail' or 'skip'.")
    try:
        archive_sha = file_sha256(path)
    except OSError as e:
        raise ExchangeError(f"Cannot read {path}: {e.strerror}.") from None
    report = ImportReport(archive_sha256=archive_sha)
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.FILE_UPLOAD_TEMP_DIR) as work:
        try:
            tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with block below)
        except (tarfile.TarError, OSError) as e:
            raise ExchangeError(f"{path} is not a readable archive ({e}).") from None
        with tar:
            manifest = _manifest(tar)
            extracted = _Extracted(tar, manifest, work, progress)
            docs = {doc: extracted.extract(f"{doc}.jsonl", f"{doc}.jsonl") for doc in DOCUMENTS}
            plan = _Plan.read(docs, manifest, on_conflict)
            for item in plan.artifacts:
                item.local = extracted.extract(item.member, item.label)
        plan.inspect_again()
        plan.check_against_registry()
        keys = _store(plan)
        try:
            with transaction.atomic():
                _write(plan, report, actor=actor, archive_sha=archive_sha, docs=docs)
        except BaseException:
            storage.delete_quietly(keys)
            raise
    return report


@dataclass
class _Artifact:
    version_key: tuple[str, int]
    record: dict
    member: str
    label: str
    local: str = ""
    storage_key: str = ""


class _Plan:
    """Everything the archive says, validated, and what of it will be imported."""

    def __init__(self):
        self.manifest: dict = {}
        self.users: dict[str, dict] = {}
        self.groups: list[str] = []
        self.datasets: dict[str, dict] = {}
        self.models: list[dict] = []
        self.skipped: list[str] = []
        self.versions: list[dict] = []
        self.artifacts: list[_Artifact] = []
        self.audit_summary = None
        self.on_conflict = "fail"
        self.external_parents: dict[tuple[str, int], ModelVersion] = {}

    @classmethod
    def read(cls, docs: dict[str, str], manifest: dict, on_conflict: str) -> "_Plan":
        plan = cls()
        plan.manifest, plan.on_conflict = manifest, on_conflict
        for r in _jsonl(docs["users"], "users.jsonl"):
            plan.users[r.text("username", 150)] = {
                "email": r.text("email", 254, optional=True),
                "first_name": r.text("first_name", 150, optional=True),
                "last_name": r.text("last_name", 150, optional=True),
                "is_active": bool(r.get("is_active", bool, optional=True)),
            }
        plan.groups = [r.text("name", 150) for r in _jsonl(docs["groups"], "groups.jsonl")]
        for r in _jsonl(docs["datasets"], "datasets.jsonl"):
            plan.datasets[r.text("name", 200)] = {
                "uri": r.text("uri", 1000, optional=True),
                "digest": r.text("digest", 200, optional=True),
                "row_count": r.count("row_count", optional=True),
                "description": r.text("description", optional=True),
                "created_by": plan._user(r, "created_by", optional=False),
                "created_at": r.when("created_at"),
            }
        names = set()
        for r in _jsonl(docs["models"], "models.jsonl"):
            model = plan._model(r)
            if model["key"] in names:
                raise ExchangeError(f"{r.where}: the model {model['name']!r} appears twice.")
            names.add(model["key"])
            plan.models.append(model)
        by_name = {m["name"]: m for m in plan.models}
        members = set()
        for r in _jsonl(docs["versions"], "versions.jsonl"):
            version = plan._version(r)
            if version["model"] not in by_name:
                raise ExchangeError(
                    f"{r.where}: its model {version['model']!r} is not in the archive."
                )
            by_name[version["model"]].setdefault("versions", []).append(version)
            for item in version["artifacts"]:
                if item.member in members:
                    raise ExchangeError(f"{r.where}: {item.member} is used twice.")
                members.add(item.member)
        verifier = ChainVerifier(manifest["scope"])
        try:
            for r in _jsonl(docs["audit"], "audit.jsonl"):
                verifier.feed(r.data)
        except ChainProblem as e:
            raise ExchangeError(
                f"The exported audit history does not verify: {e}. Nothing was imported."
            ) from None
        expected = manifest.get("audit") or {}
        summary = verifier.summary
        if (summary.events, summary.head_hash) != (
            expected.get("events"),
            expected.get("head_hash"),
        ):
            raise ExchangeError(
                f"audit.jsonl holds {summary.events} events ending in {summary.head_hash[:12]}; "
                f"the manifest recorded {expected.get('events')} ending in "
                f"{str(expected.get('head_hash'))[:12]}. Nothing was imported."
            )
        plan.audit_summary = summary
        plan._choose(by_name)
        return plan

    # -- records --------------------------------------------------------------------------

    def _user(self, r: Record, key: str, *, optional: bool = True) -> str | None:
        name = r.text(key, 150, optional=optional) or None
        if name is not None and name not in self.users:
            raise ExchangeError(f"{r.where}: {key} {name!r} is not in users.jsonl.")
        return name

    def _model(self, r: Record) -> dict:
        name = r.text("name", 100)
        try:
            display = validate_model_name(name)
        except ValidationError as e:
            raise ExchangeError(f"{r.where}: the model name {name!r}: {e.messages[0]}") from None
        policy = r.data.get("policy")
        if policy is not None:
            p = Record(policy, f"{r.where} policy")
            approvals = p.count("required_approvals")
            if not 1 <= approvals <= 10:
                raise ExchangeError(f"{p.where}: required_approvals must be 1 to 10.")
            policy = {
                "required_approvals": approvals,
                **{k: bool(p.get(k, bool)) for k in (
                    "require_description", "require_training_dataset", "require_metrics",
                    "verify_artifacts")},
                "updated_at": p.when("updated_at"),
                "gates": [self._gate(Record(g, f"{p.where} gate")) for g in p.items("gates")],
            }  # fmt: skip
        template = r.data.get("card_template")
        if template is not None:
            t = Record(template, f"{r.where} card_template")
            sections = t.items("required_sections")
            if not set(sections) <= set(CardSection.values):
                raise ExchangeError(f"{t.where}: unknown card sections.")
            template = {"required_sections": sections, "updated_at": t.when("updated_at")}
        grants = Record(r.data.get("grants") or {}, f"{r.where} grants")
        for kind in ("users", "groups"):
            for who, roles in grants.data.get(kind, {}).items():
                if not isinstance(roles, list) or not set(roles) <= {x.value for x in Role}:
                    raise ExchangeError(f"{grants.where}: roles of {who!r} are not valid.")
                if kind == "users" and who not in self.users:
                    raise ExchangeError(f"{grants.where}: {who!r} is not in users.jsonl.")
        team = r.text("team", 150, optional=True) or None
        return {
            "export_id": r.count("export_id"),
            "name": display,
            "key": name_key(display),
            "description": r.text("description", optional=True),
            "owner": self._user(r, "owner", optional=False),
            "team": team,
            "task": r.choice("task", RegisteredModel.Task.values),
            "visibility": r.choice("visibility", RegisteredModel.Visibility.values),
            "next_version_number": r.count("next_version_number"),
            "created_at": r.when("created_at"),
            "updated_at": r.when("updated_at"),
            "tags": r.mapping("tags"),
            "metric_directions": {
                k: bool(v) for k, v in (r.data.get("metric_directions") or {}).items()
            },
            "policy": policy,
            "card_template": template,
            "grants": {
                "users": grants.data.get("users", {}),
                "groups": grants.data.get("groups", {}),
            },
            "aliases": [self._alias(Record(a, f"{r.where} alias")) for a in r.items("aliases")],
            "alias_history": [
                self._assignment(Record(h, f"{r.where} alias history"))
                for h in r.items("alias_history")
            ],
        }

    def _gate(self, g: Record) -> dict:
        threshold = g.get("threshold", float, optional=True)
        regression = g.get("max_regression", float, optional=True)
        if threshold is None and regression is None:
            raise ExchangeError(f"{g.where}: a gate needs a threshold or a tolerance.")
        return {
            "metric": g.text("metric", 250),
            "split": g.text("split", 100, optional=True),
            "threshold": threshold,
            "max_regression": regression,
        }

    def _alias(self, a: Record) -> dict:
        return {
            "name": a.text("name", 64),
            "version": a.count("version"),
            "protected": bool(a.get("protected", bool)),
            "updated_at": a.when("updated_at"),
        }

    def _assignment(self, h: Record) -> dict:
        return {
            "alias_name": h.text("alias_name", 64),
            "version_number": h.count("version_number", optional=True),
            "previous_number": h.count("previous_number", optional=True),
            "kind": h.choice("kind", [k.value for k in AliasAssignment.Kind]),
            "note": h.text("note", optional=True),
            "assigned_by": self._user(h, "assigned_by", optional=False),
            "assigned_at": h.when("assigned_at"),
        }

    def _version(self, r: Record) -> dict:
        number = r.count("number")
        model = r.text("model", 100)
        if not number:
            raise ExchangeError(f"{r.where}: number must be at least 1.")
        where = f"{model} v{number}"
        metrics = []
        for m in r.items("metrics"):
            m = Record(m, f"{where} metric")
            value = m.get("value", float)
            if not math.isfinite(value):
                raise ExchangeError(f"{m.where}: value must be finite.")
            metrics.append((m.text("name", 250), m.text("split", 100, optional=True), value))
        signature = r.data.get("signature")
        if signature is not None and not isinstance(signature, dict):
            raise ExchangeError(f"{where}: signature must be an object.")
        artifacts = []
        for a in r.items("artifacts"):
            a = Record(a, f"{where} file")
            path = a.text("path", 255)
            try:
                validate_artifact_path(path)
            except ValidationError as e:
                raise ExchangeError(f"{a.where} {path!r}: {e.messages[0]}") from None
            record = {
                "path": path,
                "size": a.count("size"),
                "sha256": a.text("sha256", 64),
                "content_type": a.text("content_type", 200, optional=True)
                or "application/octet-stream",
                "created_at": a.when("created_at"),
                "format": a.text("format", 40, optional=True),
                "inspection": a.data.get("inspection") or {},
                "findings": a.data.get("findings") or [],
                "dangerous": bool(a.get("dangerous", bool, optional=True)),
            }
            member = a.text("member", 200)
            entry = self._manifest_entry(member, a.where)
            if (entry["size"], entry["sha256"]) != (record["size"], record["sha256"]):
                raise ExchangeError(
                    f"{path} of {where}: its recorded sha256 and size differ from the archive's "
                    f"copy ({member}). Nothing was imported."
                )
            artifacts.append(_Artifact((model, number), record, member, f"{path} of {where}"))
        card = r.data.get("card")
        if card is not None:
            c = Record(card, f"{where} card")
            card = {key: c.text(key, optional=True) for key in CARD_FIELDS} | {
                "updated_by": self._user(c, "updated_by"),
                "updated_at": c.when("updated_at"),
            }
        return {
            "model": model,
            "number": number,
            "status": r.choice("status", ModelVersion.Status.values),
            "description": r.text("description", optional=True),
            "created_by": self._user(r, "created_by", optional=False),
            "created_at": r.when("created_at"),
            "updated_at": r.when("updated_at"),
            "framework": r.text("framework", 100, optional=True),
            "framework_version": r.text("framework_version", 50, optional=True),
            "python_version": r.text("python_version", 20, optional=True),
            "requirements": r.text("requirements", optional=True),
            "signature": signature,
            "submitted_by": self._user(r, "submitted_by"),
            "submitted_at": r.when("submitted_at", optional=True),
            "decided_at": r.when("decided_at", optional=True),
            "source_run": r.text("source_run", 500, optional=True),
            "source_repository": r.text("source_repository", 500, optional=True),
            "source_commit": r.text("source_commit", 64, optional=True),
            "metrics": metrics,
            "params": r.mapping("params"),
            "tags": r.mapping("tags"),
            "dependencies": [
                (
                    Record(d, f"{where} dependency").text("name", 200),
                    Record(d, f"{where} dependency").text("specifier", 500, optional=True),
                )
                for d in r.items("dependencies")
            ],  # fmt: skip
            "datasets": [self._link(Record(d, f"{where} dataset")) for d in r.items("datasets")],
            "parents": [self._parent(Record(p, f"{where} parent")) for p in r.items("parents")],
            "artifacts": artifacts,
            "card": card,
            "reviews": [self._review(Record(x, f"{where} review")) for x in r.items("reviews")],
            "comments": [self._comment(Record(x, f"{where} comment")) for x in r.items("comments")],
        }

    def _manifest_entry(self, member: str, where: str) -> dict:
        for entry in self.manifest["files"]:
            if entry["name"] == member and entry["kind"] == "artifact":
                return entry
        raise ExchangeError(f"{where}: the archive has no file {member!r}.")

    def _link(self, d: Record) -> tuple[str, str]:
        name = d.text("name", 200)
        if name not in self.datasets:
            raise ExchangeError(f"{d.where}: {name!r} is not in datasets.jsonl.")
        return name, d.choice("role", VersionDataset.Role.values)

    def _parent(self, p: Record) -> tuple[str, int, str]:
        return (
            p.text("model", 100),
            p.count("version"),
            p.choice("relation", VersionParent.Relation.values),
        )

    def _review(self, x: Record) -> dict:
        gates = x.data.get("gates") or []
        if not isinstance(gates, list):
            raise ExchangeError(f"{x.where}: gates must be a list.")
        decision = x.choice("decision", Review.Decision.values)
        reason = x.text("reason", optional=True)
        if decision == Review.Decision.REJECT and not reason:
            raise ExchangeError(f"{x.where}: a rejection needs a reason.")
        return {
            "reviewer": self._user(x, "reviewer", optional=False),
            "decision": decision,
            "reason": reason,
            "override_reason": x.text("override_reason", optional=True),
            "gates": gates,
            "created_at": x.when("created_at"),
            "discarded_at": x.when("discarded_at", optional=True),
        }

    def _comment(self, x: Record) -> dict:
        return {
            "id": x.count("id"),
            "parent": x.count("parent", optional=True),
            "author": self._user(x, "author", optional=False),
            "metric": x.text("metric", 250, optional=True),
            "body": x.text("body"),
            "created_at": x.when("created_at"),
        }

    # -- what to import -------------------------------------------------------------------

    def _choose(self, by_name: dict) -> None:
        existing = set(
            RegisteredModel.objects.filter(
                name_key__in=[m["key"] for m in self.models]
            ).values_list("name_key", flat=True)
        )
        chosen = []
        for model in self.models:
            if model["key"] in existing:
                if self.on_conflict == "fail":
                    raise ExchangeError(
                        f"A model named {model['name']!r} exists in this registry. Nothing was "
                        "imported; use --on-conflict skip to keep the existing one and import "
                        "the others."
                    )
                self.skipped.append(model["name"])
                continue
            chosen.append(model)
        self.models = chosen
        self.versions = [v for m in chosen for v in m.get("versions", [])]
        self.artifacts = [a for v in self.versions for a in v["artifacts"]]

    def inspect_again(self) -> None:
        """The archive's inspection results are not trusted: every file is read again here
        (never executed), exactly as on upload."""
        by_version: dict[tuple[str, int], list[_Artifact]] = {}
        for item in self.artifacts:
            by_version.setdefault(item.version_key, []).append(item)
        for items in by_version.values():
            results = inspection.inspect_all(
                (
                    item.record["path"],
                    lambda seconds, item=item: inspection.inspect_file(
                        item.local, item.record["path"], seconds=seconds
                    ),
                )
                for item in items
            )
            inspection.add_version_context(results, results)
            for item in items:
                item.record.update(results[item.record["path"]].as_artifact_fields())

    def check_against_registry(self) -> None:
        """Conflicts with what this registry holds, found before anything is written."""
        for dataset in Dataset.objects.filter(name__in=list(self.datasets)):
            ours = self.datasets[dataset.name]["digest"]
            if ours and dataset.digest and ours != dataset.digest:
                raise ExchangeError(
                    f"Dataset {dataset.name!r} is registered here with digest {dataset.digest}; "
                    f"the archive has {ours}. Nothing was imported."
                )
        imported = {(v["model"], v["number"]) for v in self.versions}
        for version in self.versions:
            for model, number, _relation in version["parents"]:
                if (model, number) in imported or (model, number) in self.external_parents:
                    continue
                found = ModelVersion.objects.filter(
                    model__name_key=name_key(model), number=number
                ).first()
                if found is None:
                    raise ExchangeError(
                        f"{version['model']} v{version['number']} was made from {model} "
                        f"v{number}, which is neither imported nor in this registry. Nothing "
                        "was imported."
                    )
                self.external_parents[(model, number)] = found


def _store(plan: _Plan) -> list[str]:
    """Store every artifact under a fresh key (files first, rows after; removed on failure)."""
    keys: list[str] = []
    try:
        for item in plan.artifacts:
            record = item.record
            key = storage.new_storage_key(0)  # server-made; the models have no ids yet
            keys.append(key)
            storage.store(
                key,
                storage.IncomingFile(
                    record["path"],
                    item.local,
                    record["size"],
                    record["sha256"],
                    record["content_type"],
                    owned=True,
                ),  # fmt: skip
            )
            item.storage_key = key
    except BaseException:
        storage.delete_quietly(keys)
        raise
    return keys


def _write(plan: _Plan, report: ImportReport, *, actor, archive_sha: str, docs: dict) -> None:
    User = get_user_model()
    users = {u.get_username(): u for u in User.objects.filter(username__in=list(plan.users))}
    for name, data in plan.users.items():
        if name not in users:
            user = User(username=name, **data)
            user.set_unusable_password()
            user.save()
            users[name] = user
            report.users_created.append(name)
    groups = {g.name: g for g in Group.objects.filter(name__in=plan.groups)}
    for name in plan.groups:
        if name not in groups:
            groups[name] = Group.objects.create(name=name)

    datasets = {d.name: d for d in Dataset.objects.filter(name__in=list(plan.datasets))}
    new_datasets = []
    for name, data in plan.datasets.items():
        if name not in datasets:
            d = Dataset(
                name=name, uri=data["uri"], digest=data["digest"], row_count=data["row_count"],
                description=data["description"], created_by=users[data["created_by"]],
            )  # fmt: skip
            new_datasets.append((d, data["created_at"]))
            datasets[name] = d
    _create_keeping_times(Dataset, new_datasets, ["created_at"])

    models, versions = {}, {}
    for data in plan.models:
        model = RegisteredModel(
            name=data["name"], name_key=data["key"], slug=data["key"],
            description=data["description"], owner=users[data["owner"]],
            team=groups.get(data["team"]) if data["team"] else None, task=data["task"],
            visibility=data["visibility"], next_version_number=data["next_version_number"],
        )  # fmt: skip
        model.save()
        model.created_at, model.updated_at = data["created_at"], data["updated_at"]
        models[data["name"]] = (model, data)
    RegisteredModel.objects.bulk_update(
        [m for m, _ in models.values()], ["created_at", "updated_at"]
    )

    for model, data in models.values():
        ModelTag.objects.bulk_create(
            ModelTag(model=model, key=k, value=v) for k, v in data["tags"].items()
        )
        MetricSpec.objects.bulk_create(
            MetricSpec(model=model, name=k, higher_is_better=v)
            for k, v in data["metric_directions"].items()
        )
        if data["policy"]:
            p = data["policy"]
            policy = ReviewPolicy.objects.create(
                model=model, **{k: v for k, v in p.items() if k not in ("gates", "updated_at")}
            )
            MetricGate.objects.bulk_create(MetricGate(policy=policy, **g) for g in p["gates"])
            policy.updated_at = p["updated_at"]
            ReviewPolicy.objects.bulk_update([policy], ["updated_at"])
        if data["card_template"]:
            t = data["card_template"]
            template = CardTemplate.objects.create(
                model=model, required_sections=t["required_sections"]
            )
            template.updated_at = t["updated_at"]
            CardTemplate.objects.bulk_update([template], ["updated_at"])
        for who, roles in data["grants"]["users"].items():
            for role in roles:
                assign_perm(Role(role).perm, users[who], model)
        for who, roles in data["grants"]["groups"].items():
            group = groups.get(who) or Group.objects.get_or_create(name=who)[0]
            for role in roles:
                assign_perm(Role(role).perm, group, model)

    rows = []
    for v in plan.versions:
        model = models[v["model"]][0]
        version = ModelVersion(
            model=model, number=v["number"], status=v["status"], description=v["description"],
            created_by=users[v["created_by"]], framework=v["framework"],
            framework_version=v["framework_version"], python_version=v["python_version"],
            requirements=v["requirements"], signature=v["signature"],
            submitted_by=users[v["submitted_by"]] if v["submitted_by"] else None,
            submitted_at=v["submitted_at"], decided_at=v["decided_at"],
            source_run=v["source_run"], source_repository=v["source_repository"],
            source_commit=v["source_commit"],
        )  # fmt: skip
        rows.append((version, v))
    ModelVersion.objects.bulk_create([version for version, _ in rows])
    for version, v in rows:
        version.created_at, version.updated_at = v["created_at"], v["updated_at"]
        versions[(v["model"], v["number"])] = version
    ModelVersion.objects.bulk_update([version for version, _ in rows], ["created_at", "updated_at"])

    Metric.objects.bulk_create(
        Metric(version=version, name=n, split=s, value=x)
        for version, v in rows for n, s, x in v["metrics"]
    )  # fmt: skip
    Param.objects.bulk_create(
        Param(version=version, key=k, value=x)
        for version, v in rows for k, x in v["params"].items()
    )  # fmt: skip
    VersionTag.objects.bulk_create(
        VersionTag(version=version, key=k, value=x)
        for version, v in rows for k, x in v["tags"].items()
    )  # fmt: skip
    Dependency.objects.bulk_create(
        Dependency(version=version, name=n, specifier=s)
        for version, v in rows for n, s in v["dependencies"]
    )  # fmt: skip
    VersionDataset.objects.bulk_create(
        VersionDataset(version=version, dataset=datasets[name], role=role)
        for version, v in rows for name, role in v["datasets"]
    )  # fmt: skip
    parents = {**plan.external_parents, **versions}
    VersionParent.objects.bulk_create(
        VersionParent(child=version, parent=parents[(m, n)], relation=relation)
        for version, v in rows for m, n, relation in v["parents"]
    )  # fmt: skip
    _create_keeping_times(
        Artifact,
        [
            (
                Artifact(
                    version=versions[item.version_key],
                    storage_key=item.storage_key,
                    **{
                        k: item.record[k]
                        for k in (
                            "path",
                            "size",
                            "sha256",
                            "content_type",
                            "format",
                            "inspection",
                            "findings",
                            "dangerous",
                        )
                    },
                ),  # fmt: skip
                item.record["created_at"],
            )
            for item in plan.artifacts
        ],
        ["created_at"],
    )
    cards = []
    for version, v in rows:
        if v["card"]:
            c = v["card"]
            card = ModelCard(
                version=version,
                updated_by=users[c["updated_by"]] if c["updated_by"] else None,
                **{key: c[key] for key in CARD_FIELDS},
            )
            cards.append((card, c["updated_at"]))
    _create_keeping_times(ModelCard, cards, ["updated_at"])
    _create_keeping_times(
        Review,
        [
            (
                Review(
                    version=version,
                    reviewer=users[r["reviewer"]],
                    decision=r["decision"],
                    reason=r["reason"],
                    override_reason=r["override_reason"],
                    gates=r["gates"],
                    discarded_at=r["discarded_at"],
                ),  # fmt: skip
                r["created_at"],
            )
            for version, v in rows
            for r in v["reviews"]
        ],
        ["created_at"],
    )
    comments = []
    for version, v in rows:
        made = {}
        for c in sorted(v["comments"], key=lambda c: c["id"]):
            comment = Comment.objects.create(
                version=version, author=users[c["author"]], metric=c["metric"], body=c["body"],
                parent=made.get(c["parent"]),
            )  # fmt: skip
            comment.created_at = c["created_at"]
            made[c["id"]] = comment
            comments.append(comment)
    Comment.objects.bulk_update(comments, ["created_at"])

    for model, data in models.values():
        by_number = {v.number: v for (name, _), v in versions.items() if name == data["name"]}
        aliases = []
        for a in data["aliases"]:
            if a["version"] not in by_number:
                raise ExchangeError(
                    f"{data['name']}@{a['name']} points at version {a['version']}, which is "
                    "not in the archive. Nothing was imported."
                )
            aliases.append(
                (
                    Alias(
                        model=model,
                        name=a["name"],
                        version=by_number[a["version"]],
                        protected=a["protected"],
                    ),
                    a["updated_at"],
                )  # fmt: skip
            )
        _create_keeping_times(Alias, aliases, ["updated_at"])
        AliasAssignment.objects.bulk_create(
            AliasAssignment(
                model=model,
                alias_name=h["alias_name"],
                version=by_number.get(h["version_number"]),
                version_number=h["version_number"],
                previous_version=by_number.get(h["previous_number"]),
                previous_number=h["previous_number"],
                kind=h["kind"],
                note=h["note"],
                assigned_by=users[h["assigned_by"]],
                assigned_at=h["assigned_at"],
            )  # fmt: skip
            for h in data["alias_history"]
        )

    summary = plan.audit_summary
    batch = RegistryImport.objects.create(
        archive_sha256=archive_sha,
        imported_at=timezone.now(),
        imported_by=actor.get_username() if actor is not None else "",
        model_names=[data["name"] for _, data in models.values()],
        audit_scope=plan.manifest["scope"],
        audit_events=summary.events,
        audit_head_hash=summary.head_hash,
    )
    new_model = {data["export_id"]: model.pk for model, data in models.values()}
    pending = []
    for r in _jsonl(docs["audit"], "audit.jsonl"):
        record = {name: r.data.get(name) for name in AUDIT_FIELDS}
        record["created_at"] = datetime.fromisoformat(record["created_at"])
        pending.append(
            ImportedAuditEvent(
                batch=batch, registered_model_id=new_model.get(record["model_id"]), **record
            )
        )
        if len(pending) >= AUDIT_BATCH:
            ImportedAuditEvent.objects.bulk_create(pending)
            pending = []
    ImportedAuditEvent.objects.bulk_create(pending)

    report.models = [data["name"] for _, data in models.values()]
    report.skipped = plan.skipped
    report.versions = len(rows)
    report.artifacts = len(plan.artifacts)
    report.artifact_bytes = sum(item.record["size"] for item in plan.artifacts)
    report.audit_events = summary.events
    report.audit_head_hash = summary.head_hash
    report.batch_id = batch.pk
    audit.record(
        actor=actor,
        action="registry.imported",
        target=batch,
        after={
            "archive_sha256": archive_sha,
            "models": report.models,
            "skipped": report.skipped,
            "versions": report.versions,
            "files": report.artifacts,
            "users_created": report.users_created,
            "audit_scope": batch.audit_scope,
            "audit_events": summary.events,
            "audit_head_hash": summary.head_hash,
        },
    )


def _create_keeping_times(model_class, pairs: list, fields: list[str]) -> None:
    """bulk_create ``(row, when)`` pairs, then put back the exported timestamps, which
    auto_now/auto_now_add overwrote (bulk_update does not touch them)."""
    if not pairs:
        return
    rows = model_class.objects.bulk_create([row for row, _ in pairs])
    for row, (_, when) in zip(rows, pairs, strict=True):
        for name in fields:
            setattr(row, name, when)
    model_class.objects.bulk_update(rows, fields)
