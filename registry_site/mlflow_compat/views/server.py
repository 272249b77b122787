"""GET /api/3.0/mlflow/server-info: the capability probe the client sends before downloads."""

from django.http import HttpRequest, JsonResponse

from core.rules import LOGIN, access
from registry_site.mlflow_compat.protocol import endpoint


@endpoint("GET")
@access(LOGIN)
def server_info(request: HttpRequest) -> JsonResponse:
    """No multipart uploads or presigned downloads (the proxy streams), no workspaces. Any
    signed-in user."""
    return JsonResponse(
        {
            "store_type": "ModelRegistry",
            "workspaces_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
        }
    )
