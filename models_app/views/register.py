"""Registering versions and changing drafts: metadata, files, deletion.

Every view here needs the edit role on the model (404 for those who may not see it, 403 for
viewers). Only drafts change: anything else gets a 409 page saying why, and nothing is touched.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from core.errors import Conflict
from models_app import services
from models_app.access import Role, model_route, version_route
from models_app.forms import FilesForm, VersionFormBundle, version_initial
from models_app.models import Artifact, ModelVersion, RegisteredModel
from models_app.uploads import incoming_files, max_upload_bytes, receive_upload, uploaded_files


def _crumbs(model: RegisteredModel, version: ModelVersion | None, label: str) -> list:
    crumbs = [
        ("Models", reverse("models_app:model_list")),
        (model.name, model.get_absolute_url()),
    ]
    if version is not None:
        crumbs.append((f"v{version.number}", version.get_absolute_url()))
    return [*crumbs, (label, None)]


def conflict_response(request: HttpRequest, message: str, back: str) -> HttpResponse:
    return render(
        request,
        "models_app/refused.html",
        {"title": "Not possible now", "message": message, "back": back, "nav_section": "models"},
        status=409,
    )


def _not_draft(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    return conflict_response(
        request,
        f"Version {version.number} is {version.get_status_display().lower()}: its files and "
        "metadata are frozen. Register a new version instead.",
        version.get_absolute_url(),
    )


@model_route(Role.EDIT, methods=["GET", "POST"])
@csrf_exempt  # checked by receive_upload, once the upload handler is in place
def version_create(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Register a new version (a draft) with metadata and files. Edit role."""
    return receive_upload(request, _version_create, model, quota_model=model)


def _version_create(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    status = 200
    if request.method == "POST":
        bundle = VersionFormBundle(request.POST, request.FILES, with_files=True)
        if bundle.is_valid():
            try:
                files = incoming_files(uploaded_files(request.FILES), request.POST.get("paths"))
                version = services.version_create(
                    actor=request.user, model=model, metadata=bundle.metadata, files=files
                )
            except ValidationError as e:
                bundle.add_errors(e)
            else:
                messages.success(
                    request, f"Registered version {version.number} with {len(files)} file(s)."
                )
                return redirect(version)
        status = 400
    else:
        bundle = VersionFormBundle(with_files=True)
    return render(
        request,
        "models_app/version_form.html",
        {
            "model": model,
            "bundle": bundle,
            "creating": True,
            "max_upload_bytes": max_upload_bytes(),
            "nav_section": "models",
            "breadcrumbs": _crumbs(model, None, "New version"),
        },
        status=status,
    )


@version_route(Role.EDIT, methods=["GET", "POST"])
@csrf_exempt  # checked by receive_upload (the metrics file is bounded like every upload)
def version_edit(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Change a draft's metadata (its files: artifact_add/artifact_delete). Edit role."""
    if not version.is_editable:
        return _not_draft(request, version)
    return receive_upload(request, _version_edit, version)


def _version_edit(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    model = version.model
    status = 200
    if request.method == "POST":
        bundle = VersionFormBundle(request.POST, request.FILES)
        if bundle.is_valid():
            try:
                services.version_update(
                    actor=request.user, version=version, metadata=bundle.metadata
                )
            except Conflict as e:
                return conflict_response(request, str(e), version.get_absolute_url())
            except ValidationError as e:
                bundle.add_errors(e)
            else:
                messages.success(request, f"Saved version {version.number}.")
                return redirect(version)
        status = 400
    else:
        bundle = VersionFormBundle(initial=version_initial(version, request.user))
    return render(
        request,
        "models_app/version_form.html",
        {
            "model": model,
            "version": version,
            "bundle": bundle,
            "creating": False,
            "nav_section": "models",
            "breadcrumbs": _crumbs(model, version, "Edit"),
        },
        status=status,
    )


@version_route(Role.EDIT, methods=["POST"])
def version_delete(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Delete a draft and its files; the number is not reused. Edit role."""
    try:
        services.version_delete(actor=request.user, version=version)
    except Conflict as e:
        return conflict_response(request, str(e), version.get_absolute_url())
    messages.success(request, f"Deleted draft version {version.number}.")
    return redirect(version.model)


@version_route(Role.EDIT, methods=["GET", "POST"])
@csrf_exempt  # checked by receive_upload, once the upload handler is in place
def artifact_add(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Add files to a draft. Edit role."""
    if not version.is_editable:
        return _not_draft(request, version)
    return receive_upload(request, _artifact_add, version, quota_model=version.model)


def _artifact_add(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = FilesForm(request.POST, request.FILES)
        uploads = uploaded_files(request.FILES)
        if form.is_valid() and not uploads:
            form.add_error("files", "Choose at least one file or folder.")
        if form.is_valid():
            try:
                files = incoming_files(uploads, request.POST.get("paths"))
                services.artifact_add(actor=request.user, version=version, files=files)
            except Conflict as e:
                return conflict_response(request, str(e), version.get_absolute_url())
            except ValidationError as e:
                for message in e.messages:
                    form.add_error("files", message)
            else:
                messages.success(request, f"Added {len(files)} file(s).")
                return redirect(version)
        status = 400
    else:
        form = FilesForm()
    return render(
        request,
        "models_app/artifact_form.html",
        {
            "model": version.model,
            "version": version,
            "form": form,
            "max_upload_bytes": max_upload_bytes(),
            "nav_section": "models",
            "breadcrumbs": _crumbs(version.model, version, "Add files"),
        },
        status=status,
    )


@version_route(Role.EDIT, methods=["POST"])
def artifact_delete(request: HttpRequest, version: ModelVersion, path: str) -> HttpResponse:
    """Remove one file from a draft. Edit role."""
    artifact = Artifact.objects.filter(version=version, path=path).first()
    if artifact is None:
        raise Http404("No such file.")
    artifact.version = version
    try:
        services.artifact_delete(actor=request.user, artifact=artifact)
    except Conflict as e:
        return conflict_response(request, str(e), version.get_absolute_url())
    messages.success(request, f"Removed {path}.")
    return redirect(version)
