"""Reading an import archive: an archive is input like any other.

The manifest is checked first (format, version, scope, every member listed once, nothing
unlisted); members are then copied out under our own names and compared with the manifest's
size and sha256; every record is validated (names, paths, statuses, roles, the users it
mentions) and the exported audit history re-verified. Nothing here writes to the database.
"""

import json
import math
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError

from approvals.models import AliasAssignment, Review, Signature
from approvals.selectors import signature_problems
from exchange.archive import (
    DOCUMENTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    ExchangeError,
    copy_hashing,
)
from exchange.history import ChainProblem, ChainSummary, ChainVerifier, as_event
from exchange.records import CARD_FIELDS
from models_app.access import Role
from models_app.metadata import validate_artifact_path
from models_app.models import (
    CardSection,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
    VersionParent,
)
from models_app.names import name_key, validate_model_name

# ---------------------------------------------------------------------------------------------
# Records and JSON lines


class Record:
    """One JSON object of the archive, read defensively: each accessor checks the value's type
    (and length, time zone, choices…) and refuses it naming the record (``where``) and key."""

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


def read_jsonl(path: str, name: str) -> Iterator[Record]:
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


def read_manifest(tar: tarfile.TarFile) -> dict:
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


class Extracted:
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
# What the archive says


@dataclass
class ArchiveArtifact:
    """A file of a version in the archive: its record, the member holding its bytes, where it
    was extracted to (``local``) and, once stored, its storage key."""

    version_key: tuple[str, int]
    record: dict
    member: str
    label: str
    local: str = ""
    storage_key: str = ""
    stored_at: datetime | None = None


class Contents:
    """Everything the archive says, validated: the users and teams it mentions, datasets,
    models (each with its ``versions``, each version with its ArchiveArtifact ``artifacts``),
    and the summary of its audit history, verified against the manifest."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        self.users: dict[str, dict] = {}
        self.groups: list[str] = []
        self.datasets: dict[str, dict] = {}
        self.models: list[dict] = []
        self.audit_summary: ChainSummary | None = None
        # Signatures read so far, checked against the audit history once it is read.
        self.signatures: list[tuple[dict, str]] = []  # (signature, where)
        self._signed_events: dict[int, dict] = {}

    @classmethod
    def read(cls, docs: dict[str, str], manifest: dict) -> "Contents":
        """``docs``: where each of DOCUMENTS was extracted to. Raises ExchangeError naming
        the first record that is not valid."""
        contents = cls(manifest)
        contents._read_people(docs["users"], docs["groups"])
        contents._read_datasets(docs["datasets"])
        contents._read_models(docs["models"])
        contents._read_versions(docs["versions"])
        contents.audit_summary = contents._verify_audit(docs["audit"])
        contents._check_signatures()
        return contents

    # -- documents ------------------------------------------------------------------------

    def _read_people(self, users: str, groups: str) -> None:
        for r in read_jsonl(users, "users.jsonl"):
            self.users[r.text("username", 150)] = {
                "email": r.text("email", 254, optional=True),
                "first_name": r.text("first_name", 150, optional=True),
                "last_name": r.text("last_name", 150, optional=True),
                "is_active": bool(r.get("is_active", bool, optional=True)),
            }
        self.groups = [r.text("name", 150) for r in read_jsonl(groups, "groups.jsonl")]

    def _read_datasets(self, path: str) -> None:
        for r in read_jsonl(path, "datasets.jsonl"):
            self.datasets[r.text("name", 200)] = {
                "uri": r.text("uri", 1000, optional=True),
                "digest": r.text("digest", 200, optional=True),
                "row_count": r.count("row_count", optional=True),
                "description": r.text("description", optional=True),
                "created_by": self._user(r, "created_by", optional=False),
                "team": r.text("team", 150, optional=True) or None,
                "created_at": r.when("created_at"),
            }

    def _read_models(self, path: str) -> None:
        names = set()
        for r in read_jsonl(path, "models.jsonl"):
            model = self._model(r)
            if model["key"] in names:
                raise ExchangeError(f"{r.where}: the model {model['name']!r} appears twice.")
            names.add(model["key"])
            self.models.append(model)

    def _read_versions(self, path: str) -> None:
        by_name = {m["name"]: m for m in self.models}
        members = set()
        for r in read_jsonl(path, "versions.jsonl"):
            version = self._version(r)
            if version["model"] not in by_name:
                raise ExchangeError(
                    f"{r.where}: its model {version['model']!r} is not in the archive."
                )
            by_name[version["model"]].setdefault("versions", []).append(version)
            for item in version["artifacts"]:
                if item.member in members:
                    raise ExchangeError(f"{r.where}: {item.member} is used twice.")
                members.add(item.member)

    def _verify_audit(self, path: str) -> ChainSummary:
        verifier = ChainVerifier(self.manifest["scope"])
        try:
            wanted = {s["audit_seq"] for s, _ in self.signatures}
            for r in read_jsonl(path, "audit.jsonl"):
                verifier.feed(r.data)
                if r.data.get("seq") in wanted:
                    self._signed_events[r.data["seq"]] = r.data
        except ChainProblem as e:
            raise ExchangeError(
                f"The exported audit history does not verify: {e}. Nothing was imported."
            ) from None
        expected = self.manifest.get("audit") or {}
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
        return summary

    def _check_signatures(self) -> None:
        """Each signature is restored verbatim only if it still verifies against the archive:
        its audit event is in the archive's history (which verified), and the event and the
        version's content digest say what the signature says. Otherwise the archive is
        refused: a signature is never dropped or imported half-checked."""
        digests = {
            (v["model"], v["number"]): v["content_digest"]
            for m in self.models
            for v in m.get("versions", [])
        }
        for s, where in self.signatures:
            who = f"the signature of {s['printed_name']} ({s['meaning']})"
            key = (s["model_name"], s["version_number"])
            if key not in digests:
                raise ExchangeError(
                    f"{where}: {who} is for {key[0]} v{key[1]}, which is not in the archive. "
                    "Nothing was imported."
                )
            if s["content_digest"] != digests[key]:
                raise ExchangeError(
                    f"{where}: {who} covers content digest {s['content_digest']}, but the "
                    f"archive's {key[0]} v{key[1]} has {digests[key] or 'none'}. Nothing was "
                    "imported."
                )
            record = self._signed_events.get(s["audit_seq"])
            if record is None:
                raise ExchangeError(
                    f"{where}: {who} names audit event #{s['audit_seq']}, which is not in the "
                    "archive's audit history. Nothing was imported."
                )
            problems = signature_problems(_as_signature(s, digests[key]), as_event(record))
            if problems:
                raise ExchangeError(
                    f"{where}: {who} does not match audit event #{s['audit_seq']} of the "
                    f"archive: {'; '.join(problems)}. Nothing was imported."
                )

    def _signed_for(self, version: tuple, decisions: list[dict]) -> list[dict]:
        """The decisions, each signature of which must be for ``version`` (model, number)."""
        for d in decisions:
            s = d["signature"]
            if s is not None and (s["model_name"], s["version_number"]) != version:
                raise ExchangeError(
                    f"A signature of {s['printed_name']} on a decision of {version[0]} "
                    f"v{version[1]} names {s['model_name']} v{s['version_number']}: a signature "
                    "may not move to another record. Nothing was imported."
                )
        return decisions

    def _signature(self, r: Record, key: str, *, action: str, where: str) -> dict | None:
        """The ``key`` signature of a review or alias move (None when it was not signed)."""
        if r.data.get(key) is None:
            return None
        x = Record(r.data[key], f"{where} signature")
        s = {
            "action": x.choice("action", Signature.Action.values),
            "model_name": x.text("model_name", 250),
            "version_number": x.count("version_number"),
            "alias_name": x.text("alias_name", 64, optional=True),
            "signer": self._user(x, "signer", optional=False),
            "signer_username": x.text("signer_username", 150),
            "printed_name": x.text("printed_name", 300),
            "signed_at": x.when("signed_at"),
            "meaning": x.text("meaning", 200),
            "reason": x.text("reason", optional=True),
            "content_digest": x.text("content_digest", 71),
            "audit_seq": x.count("audit_seq"),
            "audit_hash": x.text("audit_hash", 64),
        }
        if s["action"] != action:
            raise ExchangeError(f"{x.where}: it signs a {s['action']}, not a {action}.")
        self.signatures.append((s, x.where))
        return s

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
        policy = self._policy(r)
        template = self._card_template(r)
        grants = self._grants(r)
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
                self._signed_for((name, _signed_number(a)), [a])[0]
                for a in (
                    self._assignment(Record(h, f"{r.where} alias history"))
                    for h in r.items("alias_history")
                )
            ],
        }

    def _policy(self, r: Record) -> dict | None:
        policy = r.data.get("policy")
        if policy is not None:
            p = Record(policy, f"{r.where} policy")
            approvals = p.count("required_approvals")
            if not 1 <= approvals <= 10:
                raise ExchangeError(f"{p.where}: required_approvals must be 1 to 10.")
            valid_days = p.count("approval_valid_days", optional=True)
            if valid_days is not None and not 1 <= valid_days <= 3650:
                raise ExchangeError(f"{p.where}: approval_valid_days must be 1 to 3650.")
            policy = {
                "required_approvals": approvals,
                **{k: bool(p.get(k, bool)) for k in (
                    "require_description", "require_training_dataset", "require_metrics",
                    "verify_artifacts")},
                "approval_valid_days": valid_days,
                "updated_at": p.when("updated_at"),
                "gates": [self._gate(Record(g, f"{p.where} gate")) for g in p.items("gates")],
            }  # fmt: skip
        return policy

    def _card_template(self, r: Record) -> dict | None:
        template = r.data.get("card_template")
        if template is not None:
            t = Record(template, f"{r.where} card_template")
            sections = t.items("required_sections")
            if not set(sections) <= set(CardSection.values):
                raise ExchangeError(f"{t.where}: unknown card sections.")
            template = {"required_sections": sections, "updated_at": t.when("updated_at")}
        return template

    def _grants(self, r: Record) -> Record:
        grants = Record(r.data.get("grants") or {}, f"{r.where} grants")
        for kind in ("users", "groups"):
            for who, roles in grants.data.get(kind, {}).items():
                if not isinstance(roles, list) or not set(roles) <= {x.value for x in Role}:
                    raise ExchangeError(f"{grants.where}: roles of {who!r} are not valid.")
                if kind == "users" and who not in self.users:
                    raise ExchangeError(f"{grants.where}: {who!r} is not in users.jsonl.")
        return grants

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
        kind = h.choice("kind", [k.value for k in AliasAssignment.Kind])
        return {
            "signature": self._signature(h, "signature", action=kind, where=h.where),
            "alias_name": h.text("alias_name", 64),
            "version_number": h.count("version_number", optional=True),
            "previous_number": h.count("previous_number", optional=True),
            "kind": kind,
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
        metrics = self._metrics(r, where)
        signature = r.data.get("signature")
        if signature is not None and not isinstance(signature, dict):
            raise ExchangeError(f"{where}: signature must be an object.")
        artifacts = [
            self._artifact(Record(a, f"{where} file"), model, number) for a in r.items("artifacts")
        ]
        card = self._card(r, where)
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
            # Archives from before approvals could expire have neither.
            "review_round": r.count("review_round", optional=True) or 0,
            "revalidation_marked_at": r.when("revalidation_marked_at", optional=True),
            "content_digest": r.text("content_digest", 71, optional=True),
            "source_run": r.text("source_run", 500, optional=True),
            # Archives from before versions kept their MLflow logged model have none.
            "source_model": r.text("source_model", 64, optional=True),
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
            "reviews": self._signed_for(
                (model, number),
                [self._review(Record(x, f"{where} review")) for x in r.items("reviews")],
            ),
            "comments": [self._comment(Record(x, f"{where} comment")) for x in r.items("comments")],
        }

    def _metrics(self, r: Record, where: str) -> list[tuple[str, str, float, int | None]]:
        metrics = []
        for m in r.items("metrics"):
            m = Record(m, f"{where} metric")
            value = m.get("value", float)
            if not math.isfinite(value):
                raise ExchangeError(f"{m.where}: value must be finite.")
            step = m.get("step", int, optional=True)
            if step is not None and abs(step) >= 2**63:
                raise ExchangeError(f"{m.where}: step is out of range.")
            metrics.append((m.text("name", 250), m.text("split", 100, optional=True), value, step))
        return metrics

    def _artifact(self, a: Record, model: str, number: int) -> ArchiveArtifact:
        where = f"{model} v{number}"
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
        return ArchiveArtifact((model, number), record, member, f"{path} of {where}")

    def _card(self, r: Record, where: str) -> dict | None:
        card = r.data.get("card")
        if card is not None:
            c = Record(card, f"{where} card")
            card = {key: c.text(key, optional=True) for key in CARD_FIELDS} | {
                "updated_by": self._user(c, "updated_by"),
                "updated_at": c.when("updated_at"),
            }
        return card

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

    def _parent(self, p: Record) -> tuple[str, int, str, bool]:
        """(model, number, relation, deleted): a deleted parent is kept by name only."""
        return (
            p.text("model", 100),
            p.count("version"),
            p.choice("relation", VersionParent.Relation.values),
            bool(p.get("deleted", bool, optional=True)),
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
            "round": x.count("round", optional=True) or 0,
            "created_at": x.when("created_at"),
            "discarded_at": x.when("discarded_at", optional=True),
            "content_digest": x.text("content_digest", 71, optional=True),
            "signature": self._signature(x, "signature", action=decision, where=x.where),
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


def _signed_number(assignment: dict) -> int | None:
    """The version number an alias history entry's signature is for: for a removal, the
    version the alias left."""
    if assignment["kind"] == AliasAssignment.Kind.REMOVE:
        return assignment["previous_number"]
    return assignment["version_number"]


def _as_signature(s: dict, version_digest: str) -> Signature:
    """An archive's signature as an unsaved row, to check it as the registry checks its own
    (approvals.selectors.signature_problems; ids are the source registry's, so it is checked
    by names: ``imported_batch_id`` set)."""
    fields = {k: v for k, v in s.items() if k != "signer"}
    return Signature(
        **fields,
        version=ModelVersion(number=s["version_number"], content_digest=version_digest),
        imported_batch_id=0,
    )
