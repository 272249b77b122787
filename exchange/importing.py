"""``manage.py import_registry``: restore an export archive into this registry.

All or nothing. Every member is checked against the manifest's sha256 and the exported audit
history is re-verified before anything is written; the artifacts are then stored under fresh
keys and every row is created in one transaction, with one ``registry.imported`` audit event.
On any failure the stored files are removed again and the message names what failed.

Users are matched by username; missing ones are created without a password (an administrator
sets one) and never as staff or superusers. Teams are matched by name, datasets by name (a
dataset registered here with another digest is a conflict), models by name (``on_conflict``:
"fail" refuses the import, "skip" keeps the existing model and imports the others).

The steps, in order: ``reading`` (the archive and its records), ``planning`` (what will be
created, conflicts with this registry), ``writing`` (files, then rows in one transaction).
"""

import tarfile
import tempfile
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from exchange.archive import DOCUMENTS, ExchangeError, file_sha256
from exchange.planning import Plan
from exchange.reading import Contents, Extracted, read_manifest
from exchange.writing import ImportReport, store_files, write_import
from models_app import storage


def import_registry(
    path: str,
    *,
    on_conflict: str = "fail",
    actor=None,
    progress: Callable | None = None,
) -> ImportReport:
    """Import the archive at ``path``; ``progress(done_members, total_members)``. Raises
    ExchangeError, having changed nothing, when the archive or a record is refused."""
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
            manifest = read_manifest(tar)
            extracted = Extracted(tar, manifest, work, progress)
            docs = {doc: extracted.extract(f"{doc}.jsonl", f"{doc}.jsonl") for doc in DOCUMENTS}
            plan = Plan.choose(Contents.read(docs, manifest), on_conflict)
            for item in plan.artifacts:
                item.local = extracted.extract(item.member, item.label)
        plan.inspect_again()
        plan.check_against_registry()
        keys = store_files(plan)
        try:
            with transaction.atomic():
                write_import(plan, report, actor=actor, archive_sha=archive_sha, docs=docs)
        except BaseException:
            storage.delete_quietly(keys)
            raise
        finally:
            storage.settle(keys)
    return report
