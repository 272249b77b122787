"""The archive format shared by export and import.

A tar file (optionally gzip-compressed) holding, under member names the registry makes up:

    users.jsonl  groups.jsonl  datasets.jsonl  models.jsonl  versions.jsonl  audit.jsonl
    artifacts/00000001 …    (the files' bytes)
    manifest.json           (written last: every other member with its size and sha256)
"""

import hashlib

FORMAT = "model-registry-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = ["users", "groups", "datasets", "models", "versions", "audit"]
CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024


class ExchangeError(Exception):
    """Export or import refused; the message names what failed. Nothing was changed."""


def artifact_member(n: int) -> str:
    return f"artifacts/{n:08d}"


class HashingReader:
    """Reads a stream while hashing it, for tarfile.addfile (which reads exactly ``size``)."""

    def __init__(self, stream):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def copy_hashing(source, target, on_chunk=None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        target.write(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return size, digest.hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
