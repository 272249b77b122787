import json
import os
import stat
import sys
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.errors import Conflict
from models_app import services, storage
from models_app.access import Role, roles_for
from models_app.metadata import parse_metadata
from models_app.models import RegisteredModel
from models_app.names import name_key


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{k}: {m}" for k, msgs in error.message_dict.items() for m in msgs)
    return "; ".join(error.messages)


def load_metadata(path: str) -> dict:
    """A metadata document from a JSON or YAML file (YAML is a superset; safe_load only)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(f"Cannot read the metadata file {path}: {e.strerror}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"The metadata file {path} is not UTF-8 text.") from None
    try:
        data = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise CommandError(f"The metadata file {path} does not parse: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CommandError(f"The metadata file {path} must hold a mapping of fields.")
    return data


def _spool(local: Path, relative: str) -> storage.IncomingFile:
    """Copy a file to a temporary file while hashing it, refusing to follow a symlink."""
    try:
        # No following links; no waiting on a FIFO (it is refused below as not a regular file).
        fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise CommandError(f"Cannot read {local}: {e.strerror}.") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CommandError(f"{local} is not a regular file.")
        tmp, size, sha256 = storage.spool_stream(f, max_bytes=sys.maxsize)
    return storage.IncomingFile(relative, tmp, size, sha256, owned=True)


def collect_files(root: Path) -> list[tuple[Path, str]]:
    """(local path, relative path with forward slashes) for a file or every file of a folder.
    Symlinks inside the folder are refused: nothing outside it is ever read."""
    given, root = root, root.resolve()  # the folder (or file) named on the command line
    if root.is_file():
        return [(root, given.name)]
    if not root.is_dir():
        raise CommandError(f"{given} does not exist (or is neither a file nor a folder).")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames) + sorted(filenames):
            entry = Path(dirpath, name)
            if entry.is_symlink():
                raise CommandError(
                    f"{entry} is a symbolic link; links are refused so that nothing outside "
                    f"{root} is read. Copy the file into the folder instead."
                )
        dirnames.sort()
        for name in sorted(filenames):
            entry = Path(dirpath, name)
            found.append((entry, entry.relative_to(root).as_posix()))
    if not found:
        raise CommandError(f"{root} holds no files.")
    return found


class Command(BaseCommand):
    help = (
        "Register a new draft version of MODEL from PATH (a file, or a folder whose files keep "
        "their relative paths), with metadata from a JSON or YAML file. The version is recorded "
        "as done by --as (default: the model's owner), who needs the edit role. Symlinks are "
        "refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="The model's name (or slug).")
        parser.add_argument("path", help="A file or a folder.")
        parser.add_argument("--metadata", help="Metadata file (.json, .yaml or .yml).")
        parser.add_argument("--as", dest="username", help="Register as this user.")

    def handle(self, *args, model, path, metadata=None, username=None, **options):
        registered = RegisteredModel.objects.filter(name_key=name_key(model)).first()
        if registered is None:
            raise CommandError(f"No model named {model!r}.")
        actor = registered.owner
        if username:
            actor = get_user_model().objects.filter(username=username, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {username!r}.")
        if Role.EDIT not in roles_for(actor, registered):
            raise CommandError(f"{actor.get_username()} may not register versions of {model}.")
        try:
            meta = parse_metadata(load_metadata(metadata) if metadata else {})
        except ValidationError as e:
            raise CommandError(f"Bad metadata: {_messages(e)}") from None

        sources = collect_files(Path(path))
        incoming: list[storage.IncomingFile] = []
        try:
            for local, relative in sources:
                incoming.append(_spool(local, relative))
            version = services.version_create(
                actor=actor, model=registered, metadata=meta, files=incoming
            )
        except ValidationError as e:
            raise CommandError(f"Not registered: {_messages(e)}") from None
        except Conflict as e:
            raise CommandError(f"Not registered: {e}") from None
        finally:
            for f in incoming:
                f.discard()
        for f in incoming:
            self.stdout.write(f"{f.sha256}  {f.path}")
        total = sum(f.size for f in incoming)
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {registered.name} version {version.number} "
                f"({len(incoming)} files, {total:,} bytes)."
            )
        )
