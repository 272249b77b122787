import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.errors import Conflict
from models_app import services, storage
from models_app.access import Role, roles_for
from models_app.management.commands.register_version import _messages, _spool, collect_files
from models_app.metadata import parse_metadata
from models_app.models import Dataset, RegisteredModel, VersionDataset, VersionTag
from models_app.names import name_key, validate_model_name

MAX_BYTES = 50 * 1024 * 1024
SCALARS = ("description", "framework", "framework_version", "python_version", "requirements")
LABEL_TAG = "label"


@dataclass
class Row:
    line: int
    model: str
    label: str
    metadata: dict
    artifact: str = ""  # a local file or folder
    files: list = field(default_factory=list)


def _inside(base: Path, artifact: str) -> Path:
    """The file or folder ``artifact`` names, relative to the CSV's folder ``base`` and inside
    it: a spreadsheet must not make the server read its own files (the secret key, another
    registry's data) and store them as downloadable artifacts. Absolute paths, '..' and links
    that lead out are refused."""
    relative = Path(artifact)
    if relative.is_absolute() or ".." in relative.parts:
        raise CommandError(
            "give a path relative to the CSV's folder, without '..': files are only read from "
            "that folder."
        )
    local = base / relative
    if not local.resolve().is_relative_to(base.resolve()):
        raise CommandError(
            "it leads out of the CSV's folder (through a symbolic link): files are only read "
            "from that folder."
        )
    return local


class Command(BaseCommand):
    help = (
        "Import versions from a spreadsheet's CSV export, one row per version. Columns: model, "
        "version (a label, kept as the version's 'label' tag), optional description, "
        "framework, framework_version, python_version, requirements, metric:<name>[@<split>], "
        "param:<key>, tag:<key>, datasets (URIs separated by ';'), dataset:<role> (train, "
        "validation, test), artifact (a file or folder, relative to the CSV, or a URI kept as "
        "the 'artifact_uri' tag). Every row is checked first: any error lists its line numbers "
        "and nothing is imported. Models that do not exist are created by --as. A label a "
        "model already has is skipped. --dry-run shows what would happen."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (UTF-8, a header row first).")
        parser.add_argument("--dry-run", action="store_true", help="Check and report only.")
        parser.add_argument(
            "--as", dest="username", help="Act as this user (default: each model's owner)."
        )

    def handle(self, *args, file, dry_run=False, username=None, **options):
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {username!r}.")
        rows, errors = self._read(Path(file))
        if rows is None:
            raise CommandError(self._refusal(errors))
        plan, more = self._check(rows, actor, Path(file).resolve().parent)
        errors += more
        if errors:
            raise CommandError(self._refusal(errors))
        for line in plan["lines"]:
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Dry run: would create {len(plan['new_models'])} model(s) and register "
                    f"{len(plan['rows'])} version(s); skip {plan['skipped']} existing. "
                    "Nothing was changed."
                )
            )
            return
        created = self._apply(plan, actor)
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(created)} version(s) into "
                f"{len({m for m, _ in created})} model(s) "
                f"({len(plan['new_models'])} new); skipped {plan['skipped']} existing."
            )
        )

    @staticmethod
    def _refusal(errors: list[str]) -> str:
        return f"Nothing imported; {len(errors)} error(s):\n" + "\n".join(errors)

    # -- reading ----------------------------------------------------------------------------

    def _read(self, path: Path) -> tuple[list[Row] | None, list[str]]:
        """The rows, and errors; rows is None when the file or its header is unusable."""
        try:
            if path.stat().st_size > MAX_BYTES:
                return None, [f"{path} is larger than {MAX_BYTES:,} bytes."]
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as e:
            return None, [f"Cannot read {path}: {e.strerror}."]
        except UnicodeDecodeError:
            return None, [f"{path} is not UTF-8 text."]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        errors = []
        if not header:
            return None, ["line 1: the file has no header row."]
        if len(set(header)) != len(header):
            errors.append("line 1: a column name appears twice.")
        for column in ("model", "version"):
            if column not in header:
                errors.append(f"line 1: the '{column}' column is required.")
        for column in header:
            known = column in ("model", "version", "datasets", "artifact", *SCALARS)
            prefixed = column.partition(":")
            if not known and not (
                prefixed[0] in ("metric", "param", "tag", "dataset") and prefixed[2]
            ):
                errors.append(f"line 1: unknown column {column!r}.")
            if prefixed[0] == "dataset" and prefixed[2] not in VersionDataset.Role.values:
                roles = ", ".join(VersionDataset.Role.values)
                errors.append(f"line 1: {column!r}: the role is one of {roles}.")
        if errors:
            return None, errors
        reader.fieldnames = header
        rows = []
        for raw in reader:
            # The row's first line: quoted cells may span several lines.
            spans = sum(v.count("\n") for v in raw.values() if isinstance(v, str))
            line = reader.line_num - spans
            cells = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if raw.get(None):
                errors.append(f"line {line}: more cells than columns.")
                continue
            if not any(cells.values()):
                continue
            rows.append(self._row(line, cells))
        return rows, errors

    def _row(self, line: int, cells: dict) -> Row:
        metadata: dict = {k: cells[k] for k in SCALARS if cells.get(k)}
        metrics, params, tags, datasets = [], {}, {}, []
        for column, value in cells.items():
            if not value:
                continue
            kind, _, name = column.partition(":")
            if kind == "metric":
                metric, _, split = name.partition("@")
                metrics.append({"name": metric, "value": value, "split": split})
            elif kind == "param":
                params[name] = value
            elif kind == "tag":
                tags[name] = value
            elif kind == "dataset":
                datasets += [(uri, name) for uri in _uris(value)]
            elif column == "datasets":
                datasets += [(uri, "train") for uri in _uris(value)]
        artifact = cells.get("artifact", "")
        if "://" in artifact:
            tags["artifact_uri"] = artifact
            artifact = ""
        tags[LABEL_TAG] = cells.get("version", "")
        metadata.update(metrics=metrics, params=params, tags=tags)
        metadata["datasets"] = [{"uri": uri, "role": role} for uri, role in datasets]
        return Row(line, cells.get("model", ""), cells.get("version", ""), metadata, artifact)

    # -- checking ---------------------------------------------------------------------------

    def _check(self, rows: list[Row], actor, base: Path) -> tuple[dict, list[str]]:
        errors: list[str] = []
        lines: list[str] = []
        models: dict[str, RegisteredModel | None] = {}
        new_models: dict[str, str] = {}
        seen: dict[tuple[str, str], int] = {}
        todo: list[Row] = []
        skipped = 0
        by_uri = dict(Dataset.objects.exclude(uri="").values_list("uri", "name"))
        for row in rows:
            where = f"line {row.line}"
            if not row.model or not row.label:
                errors.append(f"{where}: 'model' and 'version' must not be empty.")
                continue
            try:
                display = validate_model_name(row.model)
            except ValidationError as e:
                errors.append(f"{where}: model {row.model!r}: {e.messages[0]}")
                continue
            key = name_key(display)
            if (key, row.label) in seen:
                errors.append(
                    f"{where}: {display} {row.label!r} appears again (first on line "
                    f"{seen[(key, row.label)]})."
                )
                continue
            seen[(key, row.label)] = row.line
            if key not in models:
                models[key] = RegisteredModel.objects.filter(name_key=key).first()
            model = models[key]
            who = actor or (model.owner if model else None)
            if model is None:
                if actor is None:
                    errors.append(
                        f"{where}: there is no model {display!r}; name who creates it with --as."
                    )
                    continue
                new_models.setdefault(key, display)
            elif Role.EDIT not in roles_for(who, model):
                errors.append(
                    f"{where}: {who.get_username()} may not register versions of {display}."
                )
                continue
            if model is not None:
                existing = (
                    VersionTag.objects.filter(version__model=model, key=LABEL_TAG, value=row.label)
                    .values_list("version__number", flat=True)
                    .first()
                )
                if existing is not None:
                    lines.append(
                        f"{where}: {display} {row.label!r} exists as v{existing}; skipped."
                    )
                    skipped += 1
                    continue
            for d in row.metadata["datasets"]:
                d["name"] = by_uri.get(d["uri"], d["uri"])
                if len(d["name"]) > 200:
                    errors.append(f"{where}: dataset URI {d['uri'][:60]!r}… is too long.")
            try:
                # Known datasets must come with their recorded URI: a row never links to
                # another's record that holds the name.
                services.datasets_resolve(parse_metadata(row.metadata).datasets, actor=who)
            except ValidationError as e:
                errors.append(f"{where}: {_messages(e)}")
                continue
            if row.artifact:
                try:
                    row.files = collect_files(_inside(base, row.artifact))
                except CommandError as e:
                    errors.append(f"{where}: artifact {row.artifact!r}: {e}")
                    continue
            row.model = display
            todo.append(row)
            n_files = len(row.files)
            lines.append(
                f"{where}: {'new model ' if key in new_models else ''}{display} "
                f"{row.label!r}: {len(row.metadata['metrics'])} metric(s), "
                f"{len(row.metadata['params'])} param(s), {len(row.metadata['datasets'])} "
                f"dataset(s), {n_files} file(s)"
            )
        plan = {"rows": todo, "new_models": new_models, "lines": lines, "skipped": skipped}
        return plan, errors

    # -- applying ---------------------------------------------------------------------------

    def _apply(self, plan: dict, actor) -> list[tuple[str, int]]:
        created: list[tuple[str, int]] = []
        stored: list[str] = []
        try:
            with transaction.atomic():  # every row or none
                models: dict[str, RegisteredModel] = {}
                for row in plan["rows"]:
                    key = name_key(row.model)
                    model = models.get(key) or RegisteredModel.objects.filter(name_key=key).first()
                    if model is None:
                        model = services.model_create(actor=actor, name=row.model)
                    models[key] = model
                    incoming = []
                    try:
                        for local, relative in row.files:
                            incoming.append(_spool(local, relative))
                        version = services.version_create(
                            actor=actor or model.owner,
                            model=model,
                            metadata=parse_metadata(row.metadata),
                            files=incoming,
                        )
                    finally:
                        for f in incoming:
                            f.discard()
                    stored += list(version.artifacts.values_list("storage_key", flat=True))
                    created.append((model.name, version.number))
                    self.stdout.write(
                        f"line {row.line}: registered {model.name} v{version.number} "
                        f"(label {row.label!r})."
                    )
        except (ValidationError, Conflict, CommandError) as e:
            storage.delete_quietly(stored)
            message = _messages(e) if isinstance(e, ValidationError) else str(e)
            raise CommandError(f"Nothing imported: {message}") from None
        except BaseException:
            storage.delete_quietly(stored)
            raise
        return created


def _uris(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ";").split(";") if part.strip()]
