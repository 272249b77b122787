"""Versions, their files and their lineage.

Files are uploaded one per request by streaming the raw body of a PUT: it is hashed while it is
spooled to a temporary file (never held in memory) and refused with 413 past the upload limit,
before a byte is read when the Content-Length already says so.
"""

import mimetypes
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import register_converter
from ninja import Query, Router
from ninja.decorators import decorate_view
from ninja.responses import Status

from core.errors import Conflict, UploadTooLarge
from core.rules import MODEL_EDIT, MODEL_VIEW
from models_app import digest, quotas, selectors, services, storage
from models_app.lineage import walk_lineage
from models_app.metadata import parse_metadata, validate_artifact_path

from . import present
from .helpers import artifact_for, model_for, paginate, requires, version_for
from .idempotency import KeyHeader, idempotent
from .schemas import (
    ERRORS,
    FilePage,
    FileUploadOut,
    LineageOut,
    ManifestOut,
    PageQuery,
    VersionFilters,
    VersionMetadataIn,
    VersionOut,
    VersionPage,
    VersionPatchIn,
)

router = Router(tags=["versions"])


class FilePathConverter:
    """Django's ``path`` converter without its blind spot: '.' does not match a newline, so a
    file path with one would fall through to the site's HTML 404. This one takes anything, and
    validate_artifact_path() says what is wrong with it."""

    regex = r"(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FilePathConverter, "filepath")
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
BINARY = {"schema": {"type": "string", "format": "binary"}}


# ---------------------------------------------------------------------------------------------
# Versions


@router.get("/{name}/versions", response={200: VersionPage, **ERRORS}, url_name="versions")
@requires(MODEL_VIEW)
def list_versions(request: HttpRequest, name: str, filters: Query[VersionFilters]):
    """View role. Newest first."""
    model = model_for(request)
    versions = model.versions.for_grid().order_by("-number")
    if filters.status:
        versions = versions.filter(status=filters.status)
    return paginate(
        request,
        versions,
        limit=filters.limit,
        page=filters.page,
        serialize=lambda rows: (present.version_summary(request, v) for v in rows),
    )


@router.post("/{name}/versions", response={201: VersionOut, **ERRORS}, url_name="versions")
@requires(MODEL_EDIT)
@decorate_view(idempotent)
def create_version(
    request: HttpRequest,
    name: str,
    payload: VersionMetadataIn,
    idempotency_key: str | None = KeyHeader,
):
    """Edit role. Registers a draft with this metadata; add its files with PUT .../files/."""
    model = model_for(request)
    # The registry's metadata parser checks the document as a whole (rows, requirements,
    # duplicates) and raises per-field errors.
    metadata = parse_metadata(payload.model_dump(exclude_unset=True))
    version = services.version_create(actor=request.user, model=model, metadata=metadata)
    return Status(201, present.version_detail(request, version))


VersionPath = "/{name}/versions/{number}"


@router.get(VersionPath, response={200: VersionOut, **ERRORS}, url_name="version")
@requires(MODEL_VIEW)
def get_version(request: HttpRequest, name: str, number: int):
    """View role. Metadata, files, reviews and aliases held."""
    return present.version_detail(request, version_for(request, number))


@router.get(
    VersionPath + "/manifest", response={200: ManifestOut, **ERRORS}, url_name="version_manifest"
)
@requires(MODEL_VIEW)
def get_version_manifest(request: HttpRequest, name: str, number: int):
    """View role. The content manifest a reviewer's decision is bound to, the digest recorded at
    submission and the digest of the content now. sha256 of the manifest's canonical JSON
    (keys sorted, no spaces, UTF-8) is the digest: docs/content-digest.md."""
    version = version_for(request, number)
    manifest = digest.manifest(version)
    return {
        "content_digest": version.content_digest,
        "current_digest": digest.digest_of_manifest(manifest),
        "manifest": manifest,
    }


@router.patch(VersionPath, response={200: VersionOut, **ERRORS}, url_name="version")
@requires(MODEL_EDIT)
def update_version(request: HttpRequest, name: str, number: int, payload: VersionPatchIn):
    """Edit role, drafts only (409 otherwise). The fields given replace the draft's."""
    version = version_for(request, number)
    changes = payload.model_dump(exclude_unset=True)
    metadata = parse_metadata(services.version_state(version) | changes)
    updated = services.version_update(actor=request.user, version=version, metadata=metadata)
    updated.model = version.model
    return present.version_detail(request, updated)


@router.delete(VersionPath, response={204: None, **ERRORS}, url_name="version")
@requires(MODEL_EDIT)
def delete_version(request: HttpRequest, name: str, number: int):
    """Edit role, drafts only. The number is never given out again."""
    version = version_for(request, number)
    services.version_delete(actor=request.user, version=version)
    return Status(204, None)


# ---------------------------------------------------------------------------------------------
# Files


@router.get(VersionPath + "/files", response={200: FilePage, **ERRORS}, url_name="files")
@requires(MODEL_VIEW)
def list_files(request: HttpRequest, name: str, number: int, paging: Query[PageQuery]):
    """View role. Each file with its size, SHA-256 and download URL."""
    version = version_for(request, number)
    return paginate(
        request,
        version.artifacts.order_by("path"),
        limit=paging.limit,
        page=paging.page,
        serialize=lambda rows: (present.file_out(request, a, version) for a in rows),
    )


def _checked_path(raw: str) -> str:
    """The path as the client meant it. The address is percent-decoded once by the server, so
    a '%' escape left in it was encoded twice (%252e%252e%252f): refused, like '..'."""
    if PERCENT_ESCAPE.search(raw):
        raise ValidationError(
            {"path": [f"File paths must not contain percent-escapes ({raw[:80]!r}): "
                      "encode the path exactly once."]}
        )  # fmt: skip
    try:
        return validate_artifact_path(raw)
    except ValidationError as e:
        raise ValidationError({"path": e.messages}) from None


FilePath = VersionPath + "/files/{filepath:file_path}"


@router.put(
    FilePath,
    response={201: FileUploadOut, **ERRORS},
    url_name="file",
    openapi_extra={
        "requestBody": {
            "required": False,  # no body: an empty file, as the dashboard allows
            "content": {"application/octet-stream": BINARY},
            "description": "The file's bytes, streamed as the raw request body.",
        }
    },
)
@requires(MODEL_EDIT)
def upload_file(request: HttpRequest, name: str, number: int, file_path: str):
    """Edit role, drafts only. Adds one file at ``file_path``; an existing path is a 400."""
    version = version_for(request, number)
    path = _checked_path(file_path)
    limit = settings.REGISTRY_MAX_UPLOAD_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(limit)  # refused before a byte of the body is read
    if not version.is_editable:
        raise Conflict(f"Version {version.number} is not a draft: its files are frozen.")
    if declared.isdigit():  # over quota: refused before the body is read too
        quotas.precheck(user=request.user, model=version.model, incoming=int(declared))
    local, size, sha = storage.spool_stream(request, max_bytes=limit)
    incoming = storage.IncomingFile(
        path=path,
        local_path=local,
        size=size,
        sha256=sha,
        content_type=mimetypes.guess_type(path)[0] or "application/octet-stream",
        owned=True,
    )
    [artifact] = services.artifact_add(actor=request.user, version=version, files=[incoming])
    return Status(
        201,
        {
            "path": artifact.path,
            "size": artifact.size,
            "sha256": artifact.sha256,
            "download_url": present.download_url(request, artifact, version),
        },
    )


@router.get(
    FilePath,
    response={**ERRORS},
    url_name="file",
    openapi_extra={
        "responses": {
            200: {"description": "The file, as an attachment.", "content": {
                "application/octet-stream": BINARY}},
            302: {"description": "On S3: a short-lived presigned URL to download from."},
        }
    },
)  # fmt: skip
@requires(MODEL_VIEW)
def download_file(request: HttpRequest, name: str, number: int, file_path: str):
    """View role. Always an attachment of type application/octet-stream (never rendered)."""
    return selectors.file_download(artifact_for(request, number, file_path))


@router.delete(FilePath, response={204: None, **ERRORS}, url_name="file")
@requires(MODEL_EDIT)
def delete_file(request: HttpRequest, name: str, number: int, file_path: str):
    """Edit role, drafts only."""
    artifact = artifact_for(request, number, file_path)
    services.artifact_delete(actor=request.user, artifact=artifact)
    return Status(204, None)


# ---------------------------------------------------------------------------------------------
# Lineage


def _node(node) -> dict:
    if node.deleted:
        named = {"model": node.deleted_model, "number": node.deleted_number}
        return {"deleted": True, "note": node.note} | (named if node.deleted_model else {})
    if node.version is None:
        return {"hidden": True}
    v = node.version
    return {"model": v.model.name, "number": v.number, "status": v.status, "note": node.note}


@router.get(
    VersionPath + "/lineage",
    response={200: LineageOut, **ERRORS},
    url_name="lineage",
    exclude_none=True,
)
@requires(MODEL_VIEW)
def version_lineage(request: HttpRequest, name: str, number: int):
    """View role. Datasets, ancestors and descendants (five generations each); versions of
    models you may not view appear as {"hidden": true} and are not followed further; deleted
    parents as {"deleted": true}, with model and number only for those who may know them."""
    version = version_for(request, number)
    links = version.dataset_links.select_related("dataset")
    return {
        "model": version.model.name,
        "number": version.number,
        "datasets": [
            {
                "id": link.dataset_id,
                "name": link.dataset.name,
                "role": link.role,
                "uri": link.dataset.uri,
                "digest": link.dataset.digest,
            }
            for link in links
        ],  # fmt: skip
        "ancestors": [
            [_node(n) for n in gen] for gen in walk_lineage(version, request.user, up=True)
        ],
        "descendants": [
            [_node(n) for n in gen] for gen in walk_lineage(version, request.user, up=False)
        ],
    }
