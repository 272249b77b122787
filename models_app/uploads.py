"""Receiving artifact uploads over HTTP without holding a file in memory.

Django's multipart parser hands each file to the upload handlers chunk by chunk (64 KiB). Ours
writes the chunks to a temporary file (like Django's TemporaryFileUploadHandler, whatever the
file's size), hashes and counts them on the way, and refuses the request as soon as the files
add up to more than ``settings.REGISTRY_MAX_UPLOAD_BYTES``. A request whose Content-Length is
already too large is refused before a byte of its body is read.

Upload handlers must be in place before anything reads ``request.POST``, and the CSRF middleware
reads it; so an upload view is CSRF-exempt on the outside, checks access, installs the handler,
then runs the rest of the view under ``csrf_protect`` (Django's documented pattern, see
"Modifying upload handlers on the fly"). ``receive_upload`` does the last two steps.

Django keeps only the last part of a client's file name, so the path of a file inside an
uploaded folder travels in a parallel ``paths`` field (one line per file, in the order of the
``files`` then the ``folder`` input), filled in by static/js/upload.js. Without JavaScript it is
empty and each file is stored under its plain name.
"""

import contextlib
import hashlib
import mimetypes
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_protect

from core.errors import QuotaExceeded, UploadTooLarge
from models_app import quotas, storage
from models_app.models import RegisteredModel

FILE_FIELDS = ("files", "folder")
# Room for the form's other fields, multipart boundaries and per-file headers on top of the
# files themselves, so that an honest request just under the limit is not refused early.
MULTIPART_ALLOWANCE = 1024 * 1024


def max_upload_bytes() -> int:
    return settings.REGISTRY_MAX_UPLOAD_BYTES


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Spools every file to disk while computing its SHA-256 and size; refuses the request
    once the files together pass REGISTRY_MAX_UPLOAD_BYTES."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = max_upload_bytes()
        self.total = 0
        self.spooled = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.spooled.append(self.file)

    def receive_data_chunk(self, raw_data, start):
        self.total += len(raw_data)
        if self.total > self.limit:
            self.discard_all()
            raise UploadTooLarge(self.limit)
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self.digest.hexdigest()
        return uploaded

    def discard_all(self) -> None:
        """Close (and so delete) every temporary file of this request."""
        for f in self.spooled:
            with contextlib.suppress(OSError):
                f.close()
        self.spooled.clear()


def refuse_oversized(request: HttpRequest) -> HttpResponse | None:
    """A 413 answer if the declared body size is already over the limit (nothing read)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_upload_bytes() + MULTIPART_ALLOWANCE:
        return too_large_response(request, UploadTooLarge(max_upload_bytes()))
    return None


def too_large_response(request: HttpRequest, error: UploadTooLarge) -> HttpResponse:
    return render(
        request,
        "models_app/refused.html",
        {
            "title": "Upload too large",
            "message": f"{error} Split the files over several uploads, or ask an "
            "administrator to register them with manage.py register_version.",
            "nav_section": "models",
        },
        status=413,
    )


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def over_quota_response(request: HttpRequest, error: QuotaExceeded) -> HttpResponse:
    return render(
        request,
        "models_app/refused.html",
        {
            "title": "Insufficient storage" if error.exhausted else "Upload over quota",
            "message": str(error),
            "nav_section": "models",
        },
        status=error.status,
    )


def receive_upload(
    request: HttpRequest,
    view: Callable,
    *args,
    quota_model: RegisteredModel | None = None,
    **kwargs,
) -> HttpResponse:
    """Run ``view`` (under csrf_protect) with the hashing handler installed.

    Call it from a CSRF-exempt view *after* the access checks, so that a request that will be
    refused anyway is refused before its body is read. ``quota_model``: the files go to this
    model, so a body that the storage quotas cannot hold is refused unread too.
    """
    if request.method == "POST":
        refused = refuse_oversized(request)
        if refused is not None:
            return refused
        try:
            # The multipart framing is not file content: only what exceeds it is counted.
            files = max(declared_length(request) - MULTIPART_ALLOWANCE, 0)
            quotas.precheck(user=request.user, model=quota_model, incoming=files)
        except QuotaExceeded as e:
            return over_quota_response(request, e)
        request.upload_handlers = [HashingUploadHandler(request)]
    try:
        return csrf_protect(view)(request, *args, **kwargs)
    except UploadTooLarge as e:
        # The body was only partly read: make sure nothing parses it again.
        request._post, request._files = QueryDict(), MultiValueDict()
        return too_large_response(request, e)
    except QuotaExceeded as e:
        return over_quota_response(request, e)


def uploaded_files(files: MultiValueDict) -> list:
    return [f for name in FILE_FIELDS for f in files.getlist(name)]


def split_paths(text: str) -> list[str]:
    return [line for line in (text or "").splitlines() if line != ""]


def incoming_files(uploads: list, paths_text: str = "") -> list[storage.IncomingFile]:
    """The uploaded files as IncomingFiles named by the ``paths`` lines (or their own names).

    Paths are only paired here; the services validate them (relative, no '..', unique...).
    """
    paths = split_paths(paths_text)
    if paths and len(paths) != len(uploads):
        raise ValidationError(
            {
                "files": [
                    f"The list of file paths ({len(paths)}) does not match the files received "
                    f"({len(uploads)}). Choose the files again."
                ]
            }
        )
    result = []
    for i, f in enumerate(uploads):
        path = paths[i] if paths else f.name
        sha256 = getattr(f, "sha256", None)
        if sha256 is None or not hasattr(f, "temporary_file_path"):
            raise RuntimeError("incoming_files() needs HashingUploadHandler (receive_upload)")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        result.append(
            storage.IncomingFile(
                path=path,
                local_path=f.temporary_file_path(),
                size=f.size,
                sha256=sha256,
                content_type=content_type,
                owned=True,
            )
        )
    return result
