"""Site-wide pages: the dashboard home, the health probe, the server-error answer."""

import logging
import sys
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from core.rules import LOGIN, PUBLIC, access
from models_app.access import visible_models, visible_versions
from models_app.models import Dataset
from registry_site import __version__
from registry_site.middleware import TOKEN_PREFIXES, api_error

log = logging.getLogger(__name__)


@access(LOGIN)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard. Any signed-in user; shows only what they may see."""
    models = visible_models(request.user)
    versions = visible_versions(request.user)
    # Counted from the models' rows (their version_count: models_app.summary), not the versions.
    counts = models.order_by().aggregate(
        models=Count("pk"), versions=Coalesce(Sum("version_count"), 0)
    )
    context = {
        "system": _system_summary(),
        "counts": counts | {"datasets": Dataset.objects.count()},
        "recent_models": models.with_summary().order_by("-updated_at", "name_key")[:6],
        # (-pk after -created_at: the index on created_at ends in it.)
        "recent_versions": versions.select_related("model", "created_by").order_by(
            "-created_at", "-pk"
        )[:8],
    }
    return render(request, "registry_site/home.html", context)


def _system_summary() -> dict:
    storage = settings.STORAGES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {
        "database": connection.vendor,
        "storage": "S3" if settings.S3_BUCKET else "local files",
        "storage_backend": storage,
        "version": __version__,
    }


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_storage() -> None:
    # exists() on a key that is never written: a round trip that needs no write permission.
    default_storage.exists(f"healthz/{uuid.uuid4().hex}")


@access(PUBLIC)
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness. Public, no secrets: names only the part that failed."""
    checks = {"database": _check_database, "storage": _check_storage}
    results = {}
    for name, check in checks.items():
        try:
            check()
        except Exception:
            log.exception("healthz: %s check failed", name)
            results[name] = "error"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    body = {"status": "ok" if healthy else "error", "checks": results, "version": __version__}
    return JsonResponse(body, status=200 if healthy else 503)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unexpected error is Django's plain 500 page; a database that is down or
    dropped the connection is a 503 with a plain message (JSON on the API prefixes), raised
    anywhere: in a view, the MLflow API or a middleware (the token lookup)."""
    if not isinstance(sys.exception(), OperationalError | InterfaceError):
        return defaults.server_error(request)
    if request.path.startswith(TOKEN_PREFIXES):
        response = api_error(503, "unavailable", DATABASE_UNAVAILABLE, path=request.path)
    else:
        response = HttpResponse(
            DATABASE_UNAVAILABLE, status=503, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
