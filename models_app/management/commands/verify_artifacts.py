from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Sum

from models_app import storage
from models_app.models import Artifact, RegisteredModel
from models_app.names import name_key


class Progress:
    """A one-line progress report on stderr, redrawn in place; silent when not a terminal."""

    def __init__(self, stream, total_files: int, total_bytes: int):
        self.stream = stream  # a command's OutputWrapper: write(..., ending="") adds nothing
        self.enabled = stream.isatty()
        self.total_files = total_files
        self.total_bytes = max(total_bytes, 1)
        self.files = 0
        self.bytes = 0

    def advance(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if not self.enabled:
            return
        share = min(self.bytes / self.total_bytes, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(
            f"\r[{bar:<30}] {share:6.1%}  {self.files}/{self.total_files} files  "
            f"{self.bytes / 1e6:,.1f}/{self.total_bytes / 1e6:,.1f} MB",
            ending="",
            style_func=str,
        )
        self.stream.flush()

    def clear_line(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 80 + "\r", ending="", style_func=str)

    def done(self) -> None:
        if self.enabled:
            self.stream.write("", ending="\n", style_func=str)
            self.stream.flush()


class Command(BaseCommand):
    help = (
        "Re-read every stored artifact (or those of MODEL) and check that its size and SHA-256 "
        "still match what was recorded at upload. Lists each file that differs or is missing "
        "and exits with status 1 if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", nargs="?", help="Only this model (name or slug).")

    def handle(self, *args, model=None, **options):
        artifacts = Artifact.objects.all()
        if model:
            registered = RegisteredModel.objects.filter(name_key=name_key(model)).first()
            if registered is None:
                raise CommandError(f"No model named {model!r}.")
            artifacts = artifacts.filter(version__model=registered)
        totals = artifacts.aggregate(files=Count("pk"), bytes=Sum("size"))
        progress = Progress(self.stderr, totals["files"], totals["bytes"] or 0)
        rows = artifacts.order_by("pk").values_list(
            "version__model__name", "version__number", "path", "size", "sha256", "storage_key"
        )
        checked = failed = 0
        for model_name, number, path, size, sha256, key in rows.iterator(chunk_size=500):
            problem = self._check(key, size, sha256)
            checked += 1
            progress.advance(size)
            if problem:
                failed += 1
                progress.clear_line()
                self.stdout.write(f"{model_name} v{number} {path}: {problem}")
        progress.done()
        summary = (
            f"Checked {checked} files ({totals['bytes'] or 0:,} bytes): "
            f"{checked - failed} intact, {failed} damaged or missing."
        )
        if failed:
            self.stdout.write(self.style.ERROR(summary))
            raise CommandError(f"{failed} stored file(s) do not match their records.")
        self.stdout.write(self.style.SUCCESS(summary))

    @staticmethod
    def _check(key: str, size: int, sha256: str) -> str:
        try:
            actual_size, actual_sha = storage.stored_digest(key)
        except FileNotFoundError:
            return f"MISSING (key {key})"
        except Exception as e:  # noqa: BLE001 (report every unreadable file, then go on)
            return f"UNREADABLE (key {key}): {e.__class__.__name__}: {e}"
        if actual_size != size:
            return f"SIZE MISMATCH: recorded {size:,} bytes, stored {actual_size:,}"
        if actual_sha != sha256:
            return f"SHA-256 MISMATCH: recorded {sha256}, stored {actual_sha}"
        return ""
