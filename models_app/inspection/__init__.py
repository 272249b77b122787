"""Understanding model files without executing them: one reader per format, headers only.

``inspect_file(local_path, path)`` reads an incoming file (before it is stored) and returns an
``Inspection``: the format, a summary, findings, and whether loading the file is dangerous.
Formats are told apart by name and first bytes; every reader works inside the file's own bytes
under size, count and time caps, and any failure becomes a finding, never an exception.

See docs/inspection.md for what each format reports.
"""

import io
import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError

from models_app import storage
from models_app.inspection import gguf, keras, mlmodel, onnx, pickles, safetensors, savedmodel
from models_app.inspection.base import (
    ERROR,
    MAX_SECONDS,
    WARNING,
    Deadline,
    Inspection,
    LimitReached,
    Malformed,
    Window,
)
from models_app.inspection.describe import LABELS
from models_app.inspection.zipsafe import is_zip
from models_app.metadata import parse_requirements

__all__ = [
    "ERROR", "WARNING", "Inspection", "inspect_file", "inspect_stored",
    "inspect_stream", "detect", "add_version_context", "suggested_metadata", "LABELS",
]  # fmt: skip

log = logging.getLogger(__name__)

VERSION_SECONDS = 60.0  # all files of one upload together
REQUIREMENTS_BYTES = 1024 * 1024

# Which format decides the version's framework when several files suggest one.
PRIORITY = ["mlflow-model", "tensorflow-savedmodel", "onnx", "keras", "pytorch", "gguf",
            "safetensors", "joblib", "pickle"]  # fmt: skip

_READERS: dict[str, Callable] = {
    "safetensors": lambda f, w, p, r: safetensors.inspect(w, p, r),
    "onnx": lambda f, w, p, r: onnx.inspect(w, p, r),
    "keras": keras.inspect,
    "pytorch": pickles.inspect_pytorch,
    "pickle": pickles.inspect_pickle,
    "joblib": pickles.inspect_pickle,
    "numpy": pickles.inspect_numpy,
    "zip": pickles.inspect_zip,
    "tensorflow-savedmodel": lambda f, w, p, r: savedmodel.inspect(w, p, r),
    "gguf": lambda f, w, p, r: gguf.inspect(w, p, r),
    "mlflow-model": lambda f, w, p, r: mlmodel.inspect(w, p, r),
}
# Formats whose loaders can run code: a file of these that could not be checked to its end
# is "not verified" and fails the approval gate.
CODE_FORMATS = {"pickle", "joblib", "pytorch", "numpy", "keras", "zip"}


def detect(path: str, head: bytes) -> str:
    """The format of a file from its path inside the version and its first bytes."""
    name = posixpath.basename(path)
    lower = name.lower()
    if name == "MLmodel":
        return "mlflow-model"
    if lower == "saved_model.pb":
        return "tensorflow-savedmodel"
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(".onnx"):
        return "onnx"
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith(".gguf") or head[:4] == gguf.MAGIC:
        return "gguf"
    if lower.endswith((".pt", ".pth", ".ckpt")):
        return "pytorch"
    if lower.endswith(".bin") and (is_zip(head) or head[:1] == b"\x80"):
        return "pytorch"
    if lower.endswith(".joblib"):
        return "joblib"
    if lower.endswith((".pkl", ".pickle", ".dill", ".sav", ".cloudpickle")):
        return "pickle"
    if lower.endswith((".npy", ".npz")) or head[:6] == b"\x93NUMPY":
        return "numpy"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if is_zip(head):
        return "zip"
    return "unknown"


def _by_content(f, window: Window, head: bytes) -> str:
    """A file whose name and first bytes say nothing: a pickle of protocol 0 or 1, or one
    compressed the way joblib compresses, is still a pickle (pickle.load, joblib.load and
    torch.load ignore the name)."""
    if pickles.compressed_pickle(f, head, window.deadline):
        return "joblib"
    sample = window.read(0, min(pickles.SNIFF_BYTES, window.size), "the first bytes")
    return "pickle" if pickles.looks_like_pickle(sample, window.deadline) else "unknown"


def inspect_stream(f, size: int, path: str, *, seconds: float = MAX_SECONDS) -> Inspection:
    """Inspect an open, seekable binary file of ``size`` bytes named ``path`` in its version."""
    deadline = Deadline(seconds)
    window = Window(f, size, deadline)
    try:
        head = window.read(0, min(16, size), "the first bytes")
    except (OSError, Malformed) as e:
        result = Inspection("unknown")
        result.not_verified(f"could not be read ({e})")
        return result
    kind = detect(path, head)
    result = Inspection(kind)
    try:
        if kind == "unknown":
            kind = result.format = _by_content(f, window, head)
        reader = _READERS.get(kind)
        if reader is not None:
            reader(f, window, path, result)
    except LimitReached as e:
        result.add(WARNING, f"Not fully inspected: {e}.")
        if kind in CODE_FORMATS or kind == "unknown":
            result.not_verified(str(e))
    except Malformed as e:
        if kind in CODE_FORMATS:
            result.not_verified(f"not a valid {LABELS[kind]} file: {e}")
        else:
            result.add(ERROR, f"Not a valid {LABELS[kind]} file: {e}.")
    except Exception as e:  # noqa: BLE001 (a hostile file must never break an upload)
        log.warning("inspecting %s as %s failed", path, kind, exc_info=True)
        if kind in CODE_FORMATS or kind == "unknown":
            result.not_verified(f"could not be read as {LABELS[kind]} ({type(e).__name__})")
        else:
            result.add(ERROR, f"Could not be read as {LABELS[kind]} ({type(e).__name__}).")
    return result


def inspect_file(local_path: str, path: str, *, seconds: float = MAX_SECONDS) -> Inspection:
    """Inspect an incoming file from its local path (before it is stored)."""
    try:
        with open(local_path, "rb") as f:
            return inspect_stream(f, os.fstat(f.fileno()).st_size, path, seconds=seconds)
    except OSError as e:
        result = Inspection("unknown")
        result.not_verified(f"could not be read ({e.strerror})")
        return result


def inspect_stored(key: str, path: str, size: int, *, seconds: float = MAX_SECONDS):
    """Inspect a file already in storage (adopted by a version): local files are opened in
    place, S3 objects read with ranged GETs, so only the headers travel."""
    from django.core.files.storage import default_storage

    try:
        if storage._is_s3(default_storage):
            obj = default_storage.bucket.Object(default_storage._normalize_name(key))
            f = io.BufferedReader(_RangeReader(obj, size), buffer_size=1024 * 1024)
        else:
            f = default_storage.open(key, "rb")
        with f:
            return inspect_stream(f, size, path, seconds=seconds)
    except Exception as e:  # noqa: BLE001 (storage errors become a finding)
        log.warning("reading %s for inspection failed", key, exc_info=True)
        result = Inspection("unknown")
        result.not_verified(f"could not be read from storage ({type(e).__name__})")
        return result


class _RangeReader(io.RawIOBase):
    """A seekable, read-only view of an S3 object that fetches only the ranges read."""

    def __init__(self, obj, size: int):
        self.obj, self.size, self.pos = obj, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or not len(buffer):
            return 0
        end = min(self.pos + len(buffer), self.size) - 1
        data = self.obj.get(Range=f"bytes={self.pos}-{end}")["Body"].read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def inspect_all(
    items: Iterable[tuple[str, Callable[[float], Inspection]]], *, seconds: float | None = None
) -> dict[str, Inspection]:
    """Run each ``(path, inspect(seconds))`` under one time budget for the whole upload
    (``VERSION_SECONDS``); a file the budget does not reach is not verified."""
    deadline = Deadline(VERSION_SECONDS if seconds is None else seconds)
    results = {}
    for path, run in items:
        left = deadline.end - time.monotonic()
        if left <= 0:
            skipped = Inspection("unknown")
            skipped.not_verified("the upload's inspection time ran out before this file")
            results[path] = skipped
            continue
        results[path] = run(min(MAX_SECONDS, left))
    return results


def add_version_context(results: dict[str, Inspection], all_paths: Iterable[str]) -> None:
    """What a file means next to the version's other files: a SavedModel is a folder."""
    paths = set(all_paths)
    for path, result in results.items():
        if result.format != "tensorflow-savedmodel":
            continue
        folder = posixpath.dirname(path)
        prefix = f"{folder}/" if folder else ""
        result.summary["folder"] = folder or "."
        variables = [p for p in paths if p.startswith(f"{prefix}variables/")]
        result.summary["variables"] = len(variables)
        result.summary["assets"] = sum(1 for p in paths if p.startswith(f"{prefix}assets/"))
        if not variables:
            result.add(WARNING, "No variables/ folder next to saved_model.pb.")


def suggested_metadata(
    results: dict[str, Inspection], read_text: Callable[[str], str | None]
) -> dict:
    """Version fields the files tell: framework (and version) from the most telling format;
    signature, Python version and requirements from an MLmodel file. ``read_text(path)`` gives
    the text of another file of the same upload (or None)."""
    suggested: dict = {}
    ranked = sorted(
        (r for r in results.items() if r[1].format in PRIORITY),
        key=lambda item: (PRIORITY.index(item[1].format), item[0]),
    )
    for _path, result in ranked:
        framework, version = result.framework()
        if framework:
            suggested["framework"] = framework[:100]
            suggested["framework_version"] = version[:50]
            break
    for path, result in ranked:
        if result.format != "mlflow-model" or result.failed:
            continue
        summary = result.summary
        if summary.get("signature"):
            suggested.setdefault("signature", summary["signature"])
        if summary.get("python_version"):
            suggested.setdefault("python_version", summary["python_version"][:20])
        folder = posixpath.dirname(path)
        for name in summary.get("requirements_files", []):
            if not name.endswith(".txt") or "requirements" in suggested:
                continue
            candidate = posixpath.normpath(posixpath.join(folder, name)) if folder else name
            content = read_text(candidate)
            if content is None:
                continue
            try:
                parse_requirements(content)
            except ValidationError as e:
                result.add(WARNING, f"{candidate} is not a requirements file: {e.messages[0]}")
                continue
            suggested["requirements"] = content
        break
    return suggested


def read_local_text(local_path: str) -> str | None:
    """A small UTF-8 text file (requirements.txt) or None."""
    try:
        with open(local_path, "rb") as f:
            data = f.read(REQUIREMENTS_BYTES + 1)
    except OSError:
        return None
    if len(data) > REQUIREMENTS_BYTES:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
