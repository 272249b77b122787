"""/api/2.0/mlflow-artifacts/artifacts…: the artifact proxy the MLflow client uploads to and
downloads from (namespace described in sources.py).

Files of runs and logged models (``<experiment>/<run>/artifacts/…``,
``<experiment>/models/<model>/artifacts/…``) are read by whoever may see the run or logged
model and written by its creator (tracking.access).

Versions' files are read with the view role; staged uploads are written, listed, read and
deleted with the edit role. Uploads anywhere else (``team-x/uploads/abc/…``) belong to their
first uploader: only they write, list, read and delete them (superusers list and read them
too); for anyone else they do not exist (404, as a path nobody uploaded to).

Bodies are streamed both ways: uploads are spooled to a temporary file while hashed (never
read into memory), downloads are read from storage chunk by chunk.
"""

import posixpath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse

from core.rules import LOGIN, access
from models_app import quotas, storage
from models_app.access import Role, get_model_by_name_for_user, visible_models
from models_app.metadata import validate_artifact_path
from models_app.models import Artifact
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.mlflow_compat.models import StagedArtifact
from registry_site.mlflow_compat.protocol import ApiError, endpoint, invalid, not_found
from registry_site.mlflow_compat.sources import (
    Tracked,
    check_path,
    locate,
    locate_tracked,
    locate_upload,
)
from registry_site.mlflow_compat.views.common import version_of
from tracking import selectors as tracking_selectors
from tracking import services as tracking_services
from tracking.access import get_logged_model_for_user, get_run_for_user

UPLOAD_HINT = (
    "Upload files under registry/<model>/<upload id>/ (an id that is not a number, e.g. a "
    "UUID), then register that folder as a version's source."
)


def _listing(paths_and_sizes, folder: str) -> dict:
    """The entries directly inside ``folder`` (basenames; sub-folders once, without a size).
    A folder that holds nothing, or that is a file, is ``{}``: the client tells a file from a
    folder that way."""
    prefix = f"{folder}/" if folder else ""
    files, dirs = [], set()
    for path, size in paths_and_sizes:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        if "/" in rest:
            dirs.add(rest.split("/", 1)[0])
        else:
            files.append({"path": rest, "is_dir": False, "file_size": size})
    entries = [{"path": d, "is_dir": True} for d in sorted(dirs)] + sorted(
        files, key=lambda f: f["path"]
    )
    return {"files": entries} if entries else {}


@endpoint("GET")
@access(LOGIN)
def artifact_list(request: HttpRequest) -> JsonResponse:
    """List a folder. Version folders: view role; staged uploads: edit role."""
    path = check_path(request.GET.get("path", "").removesuffix("/"))
    if path == "":
        tops = {p.split("/", 1)[0] for p in _uploads(request).values_list("path", flat=True)}
        return JsonResponse(
            {"files": [{"path": d, "is_dir": True} for d in sorted(tops | {"registry"})]}
        )
    if path == "registry":
        slugs = visible_models(request.user).order_by("slug").values_list("slug", flat=True)
        return JsonResponse(
            {"files": [{"path": s, "is_dir": True} for s in slugs]} if slugs else {}
        )
    tracked = locate_tracked(path)
    if tracked is not None:
        if not (tracked.run_id or tracked.model_id):
            return JsonResponse({})
        owner = _tracked_owner(request, tracked, write=False)
        rows = tracking_selectors.files_of(owner).values_list("path", "size")
        return JsonResponse(_listing(rows, tracked.rest))
    if locate_upload(path) is not None:  # only the caller's own (superusers: all)
        rows = _uploads(request).filter(path__startswith=path).values_list("path", "size")
        return JsonResponse(_listing(rows, path))
    parts = path.split("/")
    model = get_model_by_name_for_user(request.user, parts[1])
    if len(parts) == 2:
        entries = [
            {"path": str(n), "is_dir": True}
            for n in model.versions.order_by("number").values_list("number", flat=True)
        ]
        if Role.EDIT in model.user_roles:
            uploads = {
                p.split("/", 1)[0] for p in model.staged_artifacts.values_list("path", flat=True)
            }
            entries += [{"path": u, "is_dir": True} for u in sorted(uploads)]
        return JsonResponse({"files": entries} if entries else {})
    location = locate(path)
    if location.number is not None:
        rows = Artifact.objects.filter(
            version__model=model, version__number=location.number
        ).values_list("path", "size")
        return JsonResponse(_listing(rows, location.rest))  # a missing version: {}
    model = get_model_by_name_for_user(request.user, parts[1], Role.EDIT)
    rows = model.staged_artifacts.values_list("path", "size")
    return JsonResponse(_listing(rows, location.upload))


@endpoint("GET", "PUT", "DELETE")
@access(LOGIN)
def artifact(request: HttpRequest, path: str) -> HttpResponse:
    """GET: download a file (view role for versions' files, edit role for staged ones).
    PUT: stage an upload, replacing one at the same path (edit role). DELETE: delete staged
    files at or under the path (edit role). Versions' files are read-only here."""
    path = check_path(path.removesuffix("/"))  # delete_artifacts names a folder with a slash
    tracked = locate_tracked(path)
    if tracked is not None:
        return _tracked_file(request, path, tracked)
    if locate_upload(path) is not None:
        return _upload_anywhere(request, path)
    location = locate(path)
    if request.method == "GET":
        return _download(request, path, location)
    if location is None:
        raise invalid(f"{path[:200]!r} is not a place for uploads. {UPLOAD_HINT}")
    if location.number is not None:
        raise invalid(
            f"registry/{location.model_ref}/{location.number}/ holds the files of version "
            f"{location.number}, which are read-only here. {UPLOAD_HINT}"
        )
    model = get_model_by_name_for_user(request.user, location.model_ref, Role.EDIT)
    if request.method == "DELETE":
        mlflow_services.staged_delete(actor=request.user, model=model, prefix=location.upload)
        return JsonResponse({})
    return _upload(request, model, location.upload)


def _tracked_owner(request: HttpRequest, tracked: Tracked, *, write: bool):
    """The run or logged model a tracking path names, through tracking.access (404 when the
    caller may not see it, or when the path's experiment is not its experiment)."""
    if tracked.run_id:
        owner = get_run_for_user(request.user, tracked.run_id, write=write)
    else:
        owner = get_logged_model_for_user(request.user, tracked.model_id, write=write)
    if str(owner.experiment_id) != tracked.experiment_id:
        raise not_found(f"No run or logged model at {tracked.experiment_id}/….")
    return owner


def _tracked_file(request: HttpRequest, path: str, tracked: Tracked) -> HttpResponse:
    if not (tracked.run_id or tracked.model_id) or not tracked.rest:
        if request.method == "GET":
            raise not_found(f"No file at {path[:200]}.")
        raise invalid(
            f"{path[:200]!r} is not a file under a run's or a logged model's artifacts "
            "(<experiment>/<run>/artifacts/<file> or <experiment>/models/<model>/artifacts/<file>)."
        )
    if request.method == "GET":
        owner = _tracked_owner(request, tracked, write=False)
        found = tracking_selectors.files_of(owner).filter(path=tracked.rest).first()
        if found is None:
            raise not_found(f"No file at {path[:200]}.")
        return _file_response(found)
    owner = _tracked_owner(request, tracked, write=True)
    if request.method == "DELETE":
        raise invalid("Files logged to runs and logged models are kept; they cannot be deleted.")
    try:
        validate_artifact_path(tracked.rest)
    except ValidationError as e:
        raise invalid(" ".join(e.messages)) from None
    incoming = _spooled(request, tracked.rest)
    tracking_services.tracked_file_put(
        actor=request.user, owner=owner, path=tracked.rest, incoming=incoming
    )
    return JsonResponse({})


def _spooled(request: HttpRequest, path: str, *, freed_user: int = 0) -> storage.IncomingFile:
    """The request body in a temporary file, hashed, within the upload size limit."""
    limit = settings.REGISTRY_MAX_UPLOAD_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise invalid("Content-Length must be a number.") from None
    if declared > limit:
        raise ApiError("INVALID_PARAMETER_VALUE", f"Uploads are limited to {limit:,} bytes.", 413)
    if declared and quotas.user_limit():  # over quota: refused before the body is read too
        quotas.precheck(user=request.user, model=None, incoming=declared, freed_user=freed_user)
    local_path, size, sha256 = storage.spool_stream(request, max_bytes=limit)
    return storage.IncomingFile(
        path=path,
        local_path=local_path,
        size=size,
        sha256=sha256,
        content_type=(request.content_type or "application/octet-stream")[:200],
        owned=True,
    )


def _file_response(found) -> HttpResponse:
    response = FileResponse(
        storage.open_stored(found.storage_key),
        as_attachment=True,
        filename=posixpath.basename(found.path),
        content_type="application/octet-stream",  # never a Content-Encoding: bytes as stored
    )
    response["Content-Length"] = str(found.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _download(request: HttpRequest, path: str, location) -> HttpResponse:
    if location is None or (location.number is not None and not location.rest):
        raise not_found(f"No file at {path[:200]}.")
    if location.number is not None:
        model = get_model_by_name_for_user(request.user, location.model_ref)
        version = version_of(model, location.number)
        found = Artifact.objects.filter(version=version, path=location.rest).first()
    else:
        model = get_model_by_name_for_user(request.user, location.model_ref, Role.EDIT)
        found = StagedArtifact.objects.filter(model=model, path=location.upload).first()
    if found is None:
        raise not_found(f"No file at {path[:200]}.")
    return _file_response(found)


def _upload(request: HttpRequest, model, upload_path: str) -> JsonResponse:
    if "/" not in upload_path:
        raise invalid(f"Name the file inside the upload folder. {UPLOAD_HINT}")
    try:
        validate_artifact_path(upload_path)
    except ValidationError as e:
        raise invalid(" ".join(e.messages)) from None
    limit = settings.REGISTRY_MAX_UPLOAD_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise invalid("Content-Length must be a number.") from None
    if declared > limit:
        raise ApiError("INVALID_PARAMETER_VALUE", f"Uploads are limited to {limit:,} bytes.", 413)
    if declared and quotas.enabled():  # over quota: refused before the body is read too
        previous = StagedArtifact.objects.filter(model=model, path=upload_path).first()
        quotas.precheck(
            user=request.user,
            model=model,
            incoming=declared,
            freed_model=previous.size if previous else 0,
            freed_user=previous.size
            if previous and previous.uploaded_by_id == request.user.pk
            else 0,
        )
    local_path, size, sha256 = storage.spool_stream(request, max_bytes=limit)
    incoming = storage.IncomingFile(
        path=upload_path,
        local_path=local_path,
        size=size,
        sha256=sha256,
        content_type=(request.content_type or "application/octet-stream")[:200],
        owned=True,
    )
    mlflow_services.staged_put(actor=request.user, model=model, path=upload_path, incoming=incoming)
    return JsonResponse({})


def _uploads(request: HttpRequest):
    return mlflow_services.uploads_of(request.user)


def _upload_anywhere(request: HttpRequest, path: str) -> HttpResponse:
    """An upload outside registry/ and the runs' locations: its owner reads, replaces and
    deletes it; superusers read it; for anyone else it does not exist."""
    if request.method == "GET":
        found = _uploads(request).filter(path=path).first()
        if found is None:
            raise not_found(f"No file at {path[:200]}.")
        return _file_response(found)
    if request.method == "DELETE":
        mlflow_services.staged_delete(actor=request.user, model=None, prefix=path)
        return JsonResponse({})
    if "/" not in path:
        raise invalid(
            f"Name the file inside a folder ({path[:100]}/<file>), then register the folder "
            "as a version's source."
        )
    try:
        validate_artifact_path(path)
    except ValidationError as e:
        raise invalid(" ".join(e.messages)) from None
    # Someone else's path answers as a missing one before the body is read (and again, under
    # lock, in the service).
    taken = StagedArtifact.objects.filter(model__isnull=True, path=path).first()
    if taken is not None and taken.uploaded_by_id != request.user.pk:
        raise not_found(f"No file at {path[:200]}.")
    incoming = _spooled(request, path, freed_user=taken.size if taken else 0)
    mlflow_services.staged_put(actor=request.user, model=None, path=path, incoming=incoming)
    return JsonResponse({})
