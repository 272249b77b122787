"""Downloading a version's files, one by one or as a zip.

Files are always sent as attachments of type application/octet-stream with nosniff, whatever
type was stored: an uploaded HTML or SVG file must never render in the registry's origin. On S3
the browser is sent to a short-lived presigned URL carrying the same headers.
"""

import zipfile
from collections.abc import Iterator

from django.http import (
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header

from models_app import selectors, storage
from models_app.access import Role, get_artifact, version_route
from models_app.models import ModelVersion

SUMS_NAME = "SHA256SUMS"


@version_route(Role.VIEW, methods=["GET"])
def artifact_download(request: HttpRequest, version: ModelVersion, path: str) -> HttpResponse:
    """One file of a version. View role."""
    return selectors.file_download(get_artifact(version, path))


class _ZipSink:
    """A write-only, unseekable file object: zipfile writes into it, the response drains it.

    Without seek/tell zipfile writes each entry's sizes and CRC in a data descriptor after the
    data, so nothing is ever rewound and at most one read chunk is held at a time.
    """

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_stream(files: list[dict]) -> Iterator[bytes]:
    """A ZIP_STORED archive of ``files`` (path, size, sha256, storage_key, created_at) plus a
    SHA256SUMS listing, produced chunk by chunk."""
    sink = _ZipSink()
    taken = {f["path"] for f in files}
    sums_name = SUMS_NAME if SUMS_NAME not in taken else f"{SUMS_NAME}.registry"
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for f in files:
            info = zipfile.ZipInfo(f["path"], date_time=f["created_at"].timetuple()[:6])
            info.file_size = f["size"]  # lets zipfile choose zip64 headers up front
            info.external_attr = 0o644 << 16
            with storage.open_stored(f["storage_key"]) as src, zf.open(info, "w") as dst:
                while chunk := src.read(storage.CHUNK):
                    dst.write(chunk)
                    yield sink.drain()
            yield sink.drain()
        sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
        zf.writestr(sums_name, sums)
    yield sink.drain()


@version_route(Role.VIEW, methods=["GET"])
def version_zip(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """All files of a version as one zip, with a SHA256SUMS file. View role."""
    files = list(
        version.artifacts.order_by("path").values(
            "path", "size", "sha256", "storage_key", "created_at"
        )
    )
    response = StreamingHttpResponse(
        (chunk for chunk in zip_stream(files) if chunk), content_type="application/zip"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, f"{version.model.slug}-v{version.number}.zip"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
