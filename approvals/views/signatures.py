"""A version's signature sheet: every electronic signature given on it, printable. View role;
outsiders get the 404 of a missing model."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from approvals import selectors
from models_app.access import Role, version_route
from models_app.models import ModelVersion


@version_route(Role.VIEW, methods=["GET"])
def signature_sheet(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Model, version, content digest, and each signature with its printed name, UTC time,
    meaning, reason, standing, audit event and whether it verifies; decisions made without a
    signature (by an API token, or while the policy did not ask for one) are listed apart."""
    decisions = selectors.version_decisions(version)
    return render(
        request,
        "approvals/signatures.html",
        {
            "model": version.model,
            "version": version,
            "decisions": decisions,
            "page_url": request.build_absolute_uri(request.path),
        },
    )
